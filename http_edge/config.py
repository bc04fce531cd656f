"""Edge settings, read once from the environment (SPEC §6) with working local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import defaults
from common.auth.store import store_path

USERS_GENERATIONS = {"users_v1": "v1", "users_v2": "v2"}
MAX_BODY_BYTES = defaults.MAX_BODY_BYTES
# Every variable the edge reads, with its default (written only here; .env.example
# documents them, tests/unit/test_settings.py checks both agree).
DEFAULTS: dict[str, Any] = {
    "AMQP_URI": defaults.AMQP_URI,
    "USERS_SERVICE": "users_v1",
    "RPC_TIMEOUT": 10.0,
    "READY_TIMEOUT": 2.0,
    "RETRY_AFTER": 5,
}


class ConfigError(ValueError):
    """An environment variable has a value the edge refuses to start with."""


def _positive_float(name: str) -> float:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return DEFAULTS[name]
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}.") from exc
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {raw!r}.")
    return value


@dataclass(frozen=True)
class EdgeSettings:
    amqp_uri: str
    users_service: str
    rpc_timeout: float
    ready_timeout: float
    retry_after: int
    credentials_file: Path  # AUTH_CREDENTIALS_FILE, else .run/auth/credentials.json

    @property
    def users_version(self) -> str:
        return USERS_GENERATIONS[self.users_service]

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> EdgeSettings:
        overrides = overrides or {}
        users_service = overrides.get(
            "USERS_SERVICE", os.environ.get("USERS_SERVICE", DEFAULTS["USERS_SERVICE"])
        )
        if users_service not in USERS_GENERATIONS:
            raise ConfigError(
                f"USERS_SERVICE must be one of {sorted(USERS_GENERATIONS)}, got {users_service!r}."
            )
        return cls(
            amqp_uri=overrides.get("AMQP_URI", os.environ.get("AMQP_URI", DEFAULTS["AMQP_URI"])),
            users_service=users_service,
            rpc_timeout=float(overrides.get("RPC_TIMEOUT", _positive_float("RPC_TIMEOUT"))),
            ready_timeout=float(overrides.get("READY_TIMEOUT", _positive_float("READY_TIMEOUT"))),
            retry_after=int(overrides.get("RETRY_AFTER", _positive_float("RETRY_AFTER"))),
            credentials_file=Path(overrides.get("AUTH_CREDENTIALS_FILE") or store_path()),
        )
