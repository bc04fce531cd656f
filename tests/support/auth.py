"""Credentials for tests: every request a test sends to a gateway or an edge carries these.

The session's store (tests/conftest.py creates it in a temporary directory and exports
AUTH_CREDENTIALS_FILE, so every stack a test starts uses it) holds `tests`, a consumer in
every ACL group, and the local issuer whose tokens `user_token()` mints.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from common.auth import store
from common.auth.acl import GROUPS

CONSUMER = "tests"


def create_session_store(directory: Path) -> Path:
    """A fresh store under `directory` with the `tests` consumer and the local issuer."""
    path = Path(directory) / "credentials.json"
    store.ensure_local_credentials(path, CONSUMER)
    assert store.load_store(path).consumers[CONSUMER].groups == GROUPS
    return path


def store_file() -> Path:
    """The session's credentials store (AUTH_CREDENTIALS_FILE)."""
    return Path(os.environ[store.ENV_VAR])


@functools.cache
def _api_key(path: str) -> str:
    return store.load_store(path).consumers[CONSUMER].keys[0].key


def auth_headers() -> dict[str, str]:
    """Headers that authenticate a test's request as an application allowed everything."""
    return {"apikey": _api_key(str(store_file()))}


def user_token(user_id: str, ttl: int = 300) -> str:
    """An end-user JWT for `user_id`, signed by the session's issuer."""
    return store.mint_token(store_file(), user_id, ttl)


def bearer(user_id: str, ttl: int = 300) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(user_id, ttl)}"}
