"""Authentication and authorisation at the edge (SPEC §7): the edge trusts no gateway header.

Every protected request carries an `apikey` or an `Authorization: Bearer` JWT, verified here
against the credentials store (reloaded when the file changes); the answers copy Kong's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from flask import Flask, current_app, g, request

from common.auth import acl
from common.auth.store import Consumer, CredentialStore, load_store, store_path
from common.logs import bind
from http_edge.problems import Forbidden, Unauthenticated
from workers.exceptions import OrderNotFound

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 1.0  # a revoke takes effect within this (+ the write) at every edge
NO_KEY = "No API key found in request"  # Kong key-auth's own messages (3.9.3)
BAD_KEY = "Unauthorized"
NO_GROUP = "You cannot consume this service"  # Kong acl's
_BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")  # Kong jwt's retrieve_token pattern
END_USER_PREFIX = "user:"
UNREADABLE = (0, 0, 0)
VERIFIED_TOKENS_KEPT = 10_000


@dataclass(frozen=True)
class Caller:
    name: str  # consumer name, or "user:<sub>" for an end user (logs, RPC context)
    user_id: str | None = None  # the token's `sub` for an end user


class CredentialsCache:
    """The store as last read, re-read when the file's stat changes (checked ≤ once a second)."""

    def __init__(self, path: Path, check_every: float = RELOAD_CHECK_SECONDS) -> None:
        self.path = path
        self.check_every = check_every
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._stamp: tuple[int, int, int] | None = None
        self._store = CredentialStore()
        self._by_key: dict[str, tuple[str, Consumer]] = {}
        self._public_keys: dict[str, Any] = {}
        # token -> (caller, exp): an RS256 check costs ~0.2 ms, and an end user resends one
        # token many times. Emptied whenever the store changes (a removed issuer).
        self._verified: dict[str, tuple[Caller, int]] = {}

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return
        with self._lock:
            if now - self._checked < self.check_every:
                return  # another thread re-read it while this one waited
            try:
                st = self.path.stat()
                stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
                if stamp != self._stamp:
                    self._load(stamp)
            except (OSError, ValueError) as exc:
                # No readable store means no credential can be checked: everyone is refused.
                if self._stamp != UNREADABLE:
                    log.error("credentials store %s unreadable: %s", self.path, exc)
                self._stamp, self._store = UNREADABLE, CredentialStore()
                self._by_key, self._public_keys, self._verified = {}, {}, {}
            # Only now: threads arriving meanwhile wait for the lock instead of reading a
            # store not loaded yet (a fresh worker's first requests were refused).
            self._checked = time.monotonic()

    def _load(self, stamp: tuple[int, int, int]) -> None:
        store = load_store(self.path)
        public_keys = {
            iss: serialization.load_pem_public_key(issuer.rsa_public_key.encode())
            for iss, issuer in store.issuers.items()
        }
        self._by_key = {k.key: (n, c) for n, c in store.consumers.items() for k in c.keys}
        self._stamp, self._store, self._public_keys = stamp, store, public_keys
        self._verified = {}

    def consumer(self, key: str) -> tuple[str, Consumer] | None:
        self._refresh()
        return self._by_key.get(key)

    def verified(self, token: str) -> Caller | None:
        """The caller of a token this store already verified, while it has not expired."""
        self._refresh()
        hit = self._verified.get(token)
        if hit is None or hit[1] <= time.time():
            return None
        return hit[0]

    def remember(self, token: str, caller: Caller, exp: int) -> None:
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified = {}  # crude but bounded; a miss only costs one verification
        self._verified[token] = (caller, exp)

    def issuer(self, iss: str) -> tuple[str, Any] | None:
        """(algorithm, public key object) of a known issuer."""
        self._refresh()
        issuer = self._store.issuers.get(iss)
        return (issuer.algorithm, self._public_keys[iss]) if issuer else None


def credentials() -> CredentialsCache:
    return current_app.extensions["credentials"]


def _verify_token(token: str) -> Caller:
    """A valid end-user JWT's caller, or Unauthenticated with Kong jwt's message."""
    known = credentials().verified(token)
    if known is not None:
        return known
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"Bad token; {exc}") from None
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise Unauthenticated("No mandatory 'iss' in claims")
    issuer = credentials().issuer(iss)
    if issuer is None:
        raise Unauthenticated("No credentials found for given 'iss'")
    algorithm, public_key = issuer
    if header.get("alg") != algorithm:
        raise Unauthenticated("Invalid algorithm")
    try:
        claims = jwt.decode(
            token, public_key, algorithms=[algorithm], options={"require": ["exp", "sub"]}
        )
    except jwt.InvalidSignatureError:
        raise Unauthenticated("Invalid signature") from None
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"'{exc.claim}' must be present") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"Bad token; {exc}") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("Bad token; 'sub' must be a userId")
    caller = Caller(END_USER_PREFIX + sub, sub)
    credentials().remember(token, caller, int(claims["exp"]))
    return caller


def _authenticate() -> Caller:
    """Either credential works (Kong's jwt + key-auth with `anonymous`); jwt is tried first."""
    key = request.headers.get("apikey", "")
    authorization = request.headers.get("Authorization", "")
    match = _BEARER.match(authorization)
    if match:
        try:
            return _verify_token(match.group(1).strip())
        except Unauthenticated:
            if not key:
                raise
    if not key:
        raise Unauthenticated(NO_KEY)
    found = credentials().consumer(key)
    if found is None:
        raise Unauthenticated(BAD_KEY)
    name, consumer = found
    g.consumer_groups = consumer.groups
    return Caller(name)


def _authorise(caller: Caller) -> None:
    group = acl.group_for(request.method, request.path)
    if group is None:
        return  # no such route: Flask answers 404/405 for any authenticated caller
    if caller.user_id is None:
        if group not in g.consumer_groups:
            raise Forbidden(NO_GROUP)
        return
    _authorise_end_user(caller.user_id, request.method, request.path)


def _authorise_end_user(user_id: str, method: str, path: str) -> None:
    """What an end user may do before any RPC (order ownership needs the order: see below)."""
    parts = [p for p in path.split("/") if p]
    if parts[0] == "users":
        if len(parts) != 2 or parts[1] != user_id:
            raise Forbidden("An end user may only read and change their own user.")
    elif len(parts) == 3 and parts[2] == "status":
        raise Forbidden("An end user may not change an order's status.")


def authenticate_request() -> None:
    """before_request: protected paths need a valid credential; sets `g.caller`."""
    g.caller = None
    if not acl.is_protected(request.path):
        return
    caller = _authenticate()
    g.caller = caller.name
    g.end_user = caller.user_id
    bind(caller=caller.name)
    _authorise(caller)


def end_user() -> str | None:
    """The userId of the end user making this request, or None for an application."""
    return g.get("end_user")


def restrict_listing(user_id: str | None) -> str | None:
    """The userId filter a listing runs with: an end user only ever lists their own orders."""
    own = end_user()
    if own is None:
        return user_id
    if user_id is not None and user_id != own:
        raise Forbidden("An end user may only list their own orders.")
    return own


def check_order_owner(order: dict[str, Any], order_id: str) -> None:
    """Another user's order does not exist for an end user (404, not 403: no probing)."""
    own = end_user()
    if own is not None and order.get("userId") != own:
        raise OrderNotFound(order_id)


def claim_new_order(payload: dict[str, Any]) -> dict[str, Any]:
    """An end user creates orders only for themselves (`userId` absent → theirs)."""
    own = end_user()
    if own is None:
        return payload
    if payload.get("userId", own) != own:
        raise Forbidden("An end user may only create orders for themselves.")
    return {**payload, "userId": own}


def register_auth(app: Flask, path: Path | None = None) -> None:
    app.extensions["credentials"] = CredentialsCache(path or store_path())
    app.before_request(authenticate_request)
