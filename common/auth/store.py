"""The credentials store: API-key consumers and token issuers in one 0600 JSON file (SPEC §7).

Format and API are the identity contract (coord AUTH-CONTRACT.md) shared with the gateways.
The issuer's private key lives beside the file (`issuer-private.pem`) and is never rendered.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.auth.acl import GROUPS

VERSION = 1
ENV_VAR = "AUTH_CREDENTIALS_FILE"
FILE_NAME = "credentials.json"
ISSUER_PEM = "issuer-private.pem"
LOCAL_ISSUER = "micro-local"
END_USERS = "end-users"  # the issuer's consumer: implied by the issuer, never listed
ANONYMOUS = "anonymous"  # Kong's placeholder consumer for "no credential"
RESERVED_NAMES = frozenset({END_USERS, ANONYMOUS})
LIMIT_WINDOWS = ("second", "minute")
_REPO_ROOT = Path(__file__).resolve().parents[2]


class StoreError(ValueError):
    """The store or a change to it is invalid (unknown group, duplicate name, bad file)."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    key: str


@dataclass(frozen=True)
class Consumer:
    groups: tuple[str, ...]
    keys: tuple[ApiKey, ...]
    limits: Mapping[str, int] = field(default_factory=dict)  # {"second": N} / {"minute": N} / {}


@dataclass(frozen=True)
class Issuer:
    algorithm: str
    rsa_public_key: str
    consumer: str = END_USERS


@dataclass(frozen=True)
class CredentialStore:
    consumers: dict[str, Consumer] = field(default_factory=dict)
    issuers: dict[str, Issuer] = field(default_factory=dict)

    def consumer_for_key(self, key: str) -> tuple[str, Consumer, ApiKey] | None:
        """The (name, consumer, key) owning this API key, compared in constant time."""
        found = None
        for name, consumer in self.consumers.items():
            for api_key in consumer.keys:
                if secrets.compare_digest(api_key.key.encode(), key.encode()):
                    found = (name, consumer, api_key)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "consumers": {
                name: {
                    "groups": list(c.groups),
                    "keys": [{"id": k.id, "key": k.key} for k in c.keys],
                    "limits": dict(c.limits),
                }
                for name, c in self.consumers.items()
            },
            "issuers": {
                name: {
                    "algorithm": i.algorithm,
                    "rsa_public_key": i.rsa_public_key,
                    "consumer": i.consumer,
                }
                for name, i in self.issuers.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CredentialStore:
        if data.get("version") != VERSION:
            raise StoreError(f"credentials store version {data.get('version')!r} is not {VERSION}")
        try:
            consumers = {
                name: Consumer(
                    groups=tuple(c["groups"]),
                    keys=tuple(ApiKey(k["id"], k["key"]) for k in c["keys"]),
                    limits=dict(c.get("limits") or {}),
                )
                for name, c in data.get("consumers", {}).items()
            }
            issuers = {
                name: Issuer(i["algorithm"], i["rsa_public_key"], i.get("consumer", END_USERS))
                for name, i in data.get("issuers", {}).items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"credentials store is malformed: {exc!r}") from None
        return cls(consumers, issuers)


def store_path(run_dir: Path | str | None = None) -> Path:
    """$AUTH_CREDENTIALS_FILE, else `<run dir>/auth/credentials.json` (run dir: repo .run)."""
    explicit = os.environ.get("AUTH_CREDENTIALS_FILE", "").strip()
    if explicit:
        return Path(explicit)
    return Path(run_dir or _REPO_ROOT / ".run") / "auth" / FILE_NAME


def private_key_path(path: Path) -> Path:
    return Path(path).parent / ISSUER_PEM


def load_store(path: Path | str) -> CredentialStore:
    """Read the store (FileNotFoundError when absent, StoreError when malformed)."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"credentials store {path} is not JSON: {exc}") from None
    return CredentialStore.from_json(data)


def write_private(path: Path, content: bytes) -> None:
    """Atomic 0600 write: readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_store(store: CredentialStore, path: Path | str) -> None:
    write_private(Path(path), (json.dumps(store.to_json(), indent=2) + "\n").encode())


def _load_or_empty(path: Path) -> CredentialStore:
    try:
        return load_store(path)
    except FileNotFoundError:
        return CredentialStore()


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    groups = tuple(dict.fromkeys(g.strip() for g in groups if g.strip()))
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise StoreError(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    if not groups:
        raise StoreError(f"give at least one group of {', '.join(GROUPS)}")
    return groups


def check_limits(limits: Mapping[str, int] | None) -> dict[str, int]:
    limits = dict(limits or {})
    if len(limits) > 1 or any(w not in LIMIT_WINDOWS for w in limits):
        raise StoreError(f"a limit is one of {LIMIT_WINDOWS} with a count, got {limits}")
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in limits.values()):
        raise StoreError(f"a limit is a whole number >= 1, got {limits}")
    return limits


def _folded(name: str) -> str:
    # What deploy/k8s/kong_consumers.py names the KongConsumer: two names folding alike
    # would be one resource, the later one replacing the other (even `anonymous`'s).
    return name.lower().replace("_", "-")


def create_consumer(
    path: Path | str,
    name: str,
    groups: Iterable[str],
    limits: Mapping[str, int] | None = None,
) -> str:
    """Add consumer `name` with one fresh key and return the key (StoreError if it exists)."""
    path = Path(path)
    plain = name.isascii() and name.replace("-", "").replace("_", "").isalnum()
    if not name or not plain or _folded(name) in {_folded(n) for n in RESERVED_NAMES}:
        raise StoreError(f"consumer name {name!r} must be letters, digits, - or _, not reserved")
    store = _load_or_empty(path)
    same = [n for n in store.consumers if _folded(n) == _folded(name)]
    if same:
        raise StoreError(
            f"consumer {name!r} already exists as {same[0]!r}: names differing only in case, "
            "- or _ are one Kubernetes resource (revoke it first)"
        )
    key = secrets.token_urlsafe(32)
    consumer = Consumer(
        check_groups(groups), (ApiKey(str(uuid.uuid4()), key),), check_limits(limits)
    )
    save_store(CredentialStore({**store.consumers, name: consumer}, store.issuers), path)
    return key


def revoke_consumer(path: Path | str, name: str) -> bool:
    """Remove consumer `name` and its keys; False when there was none."""
    path = Path(path)
    store = _load_or_empty(path)
    if name not in store.consumers:
        return False
    consumers = {n: c for n, c in store.consumers.items() if n != name}
    save_store(CredentialStore(consumers, store.issuers), path)
    return True


def create_issuer(path: Path | str, name: str = LOCAL_ISSUER) -> Issuer:
    """Generate an RSA key pair for issuer `name`: private key beside the store, public in it."""
    path = Path(path)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_private(private_key_path(path), pem)
    issuer = Issuer("RS256", public.decode(), END_USERS)
    store = _load_or_empty(path)
    save_store(CredentialStore(store.consumers, {**store.issuers, name: issuer}), path)
    return issuer


def mint_token(path: Path | str, user_id: str, ttl: int = 3600, issuer: str = LOCAL_ISSUER) -> str:
    """An end-user JWT (RS256, `sub`=user_id, `exp`=now+ttl) signed by the local issuer."""
    if ttl < 1:
        raise StoreError("ttl must be at least 1 second")
    if issuer not in load_store(path).issuers:
        raise StoreError(f"no issuer {issuer!r} in {path}")
    private = private_key_path(Path(path)).read_bytes()
    now = int(time.time())
    claims = {"iss": issuer, "sub": user_id, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, private, algorithm="RS256")


@dataclass(frozen=True)
class LocalCredentials:
    path: Path
    api_key: str  # the consumer's first key
    created: bool  # this call created the consumer


def ensure_local_credentials(path: Path | str, consumer: str = "dev") -> LocalCredentials:
    """First run: the store, the local issuer's key pair and `consumer` in every group."""
    path = Path(path)
    store = _load_or_empty(path)
    if LOCAL_ISSUER not in store.issuers or not private_key_path(path).exists():
        create_issuer(path)
    existing = store.consumers.get(consumer)
    if existing and existing.keys:
        return LocalCredentials(path, existing.keys[0].key, False)
    if existing:
        revoke_consumer(path, consumer)
    return LocalCredentials(path, create_consumer(path, consumer, GROUPS), True)
