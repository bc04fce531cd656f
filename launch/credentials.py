"""The local credentials workflow: the first `make run` / `make up` creates the store (SPEC §7).

It holds the local issuer's key pair and a `dev` consumer in every group, under `.run/auth/`
(0600); `.run/dev-credentials.env` carries `API_KEY=<key>` for the README's curl examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from common.auth import store

DEV_CONSUMER = "dev"
DEV_ENV_FILE = "dev-credentials.env"


def credentials_file(env: Mapping[str, str], run_dir: Path) -> Path:
    """AUTH_CREDENTIALS_FILE from the stack's env, else `<run_dir>/auth/credentials.json`."""
    explicit = env.get("AUTH_CREDENTIALS_FILE", "").strip()
    return Path(explicit) if explicit else Path(run_dir) / "auth" / store.FILE_NAME


def write_dev_env(run_dir: Path, api_key: str) -> Path:
    path = Path(run_dir) / DEV_ENV_FILE
    store.write_private(path, f"API_KEY={api_key}\n".encode())
    return path


def prepare(
    env: Mapping[str, str], run_dir: Path, gateway_port: int
) -> tuple[dict[str, str], str]:
    """Create what is missing; the stack's env with AUTH_CREDENTIALS_FILE, and what to print."""
    path = credentials_file(env, run_dir)
    local = store.ensure_local_credentials(path, DEV_CONSUMER)
    dev_env = Path(run_dir) / DEV_ENV_FILE
    if local.created or not dev_env.exists():
        write_dev_env(run_dir, local.api_key)
    note = usage(path, dev_env, local.created, gateway_port)
    return {**env, "AUTH_CREDENTIALS_FILE": str(path)}, note


def usage(path: Path, dev_env: Path, created: bool, gateway_port: int) -> str:
    first = f"created {path} (0600) with the `dev` consumer" if created else f"using {path}"
    return (
        f"  auth    {first}; its key is in {dev_env}:\n"
        f"      . {dev_env}\n"
        f'      curl -H "apikey: $API_KEY" "localhost:{gateway_port}/orders/?status=shipping"\n'
        "      more keys and end-user tokens: .venv/bin/micro-auth --help"
    )
