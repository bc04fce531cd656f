"""Nameko services (users_v1, users_v2, orders) and their data layer."""

import warnings

# eventlet prints a multi-line deprecation notice on import; nameko 2.x needs eventlet.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
