"""Write the local overlay's Secret sources (git-ignored) with fresh random credentials.

`.venv/bin/python deploy/k8s/local_secrets.py [DIR]`; existing passwords are kept, so
re-running is safe. The edges' credentials store is copied afresh from $AUTH_CREDENTIALS_FILE
(default .run/auth/credentials.json, created like `make run` does if missing) every time.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

from common.auth.store import ensure_local_credentials, load_store, save_store, store_path

DEFAULT_DIR = Path(__file__).parent / "overlays" / "local" / "secrets"
# Secret name -> the user name it holds (RabbitMQ: launch/broker_accounts.py's components).
ACCOUNTS = {
    "rabbitmq-users-v1": "users_v1",
    "rabbitmq-users-v2": "users_v2",
    "rabbitmq-orders": "orders",
    "rabbitmq-edge": "edge",
    "rabbitmq-operator": "operator",
    "mongodb-root": "root",
    "mongodb-app": "micro",
}
KEYFILE = "mongodb-keyfile"
# Secret edge-credentials, key credentials.json (base/edges.yaml).
CREDENTIALS = "edge-credentials.json"


def _write_private(path: Path, text: str) -> None:
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def write_secrets(directory: Path) -> list[Path]:
    """Create every missing file; URL-safe passwords go into connection URIs unquoted."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for secret, username in ACCOUNTS.items():
        password = secrets.token_urlsafe(32)
        _write_private(directory / f"{secret}.env", f"username={username}\npassword={password}\n")
    # mongod's keyfile: base64 characters only, 6..1024 of them.
    _write_private(directory / KEYFILE, base64.b64encode(secrets.token_bytes(756)).decode())
    copy_store(directory / CREDENTIALS)
    return sorted(directory.iterdir())


def copy_store(target: Path, source: Path | None = None) -> None:
    """Re-serialised through the store's own format: only consumers and public keys, never
    the issuer's private key (it stays in the store's directory, outside the cluster)."""
    source = source or store_path()
    if not source.exists():
        ensure_local_credentials(source)
    save_store(load_store(source), target)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    for path in write_secrets(target):
        print(path)
