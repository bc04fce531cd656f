"""Credentials for tests: every request a test sends to a gateway or an edge carries these.

Until authentication exists this is empty; the identity work makes it return a valid API key
of a consumer in every ACL group, from the session's generated credentials store.
"""

from __future__ import annotations


def auth_headers() -> dict[str, str]:
    """Headers that authenticate a test's request as an application allowed everything."""
    return {}
