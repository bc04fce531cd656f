"""Nameko services and their data layer. `users/` and `orders/`: one package per service;
`runtime/`: what every service runs on; `db/`: `micro-db`. `exceptions.py` holds the typed
remote errors clients import; `users_v1.py` / `users_v2.py` are the two generations' entry
modules for `nameko run`. Imports go down only: db → services → runtime."""

import warnings

# eventlet prints a multi-line deprecation notice on import; nameko 2.x needs eventlet.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
