"""Credentials for tests: every request a test sends to a gateway or an edge carries these.

The session's store (tests/conftest.py creates it in a temporary directory and exports
AUTH_CREDENTIALS_FILE, so every stack a test starts uses it) holds `tests`, a consumer in
every ACL group, and the local issuer whose tokens `user_token()` mints.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import requests

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


class _AuthenticatedHttp:
    """`requests`' verbs with the session's API key added (a request's own headers win).

    No shared Session: tests call it from many threads at once.
    """

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {**auth_headers(), **(kwargs.get("headers") or {})}
        return requests.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("OPTIONS", url, **kwargs)


api = _AuthenticatedHttp()


def raw_auth_header() -> bytes:
    """The credential as a raw HTTP/1.1 header line, for tests speaking over sockets."""
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in auth_headers().items())


def authenticated_session() -> requests.Session:
    """A requests Session sending the session's API key (one per thread, as any Session)."""
    session = requests.Session()
    session.headers.update(auth_headers())
    return session
