"""Edge settings, read once from the environment (SPEC §6) with working local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

USERS_GENERATIONS = {"users_v1": "v1", "users_v2": "v2"}
MAX_BODY_BYTES = 64 * 1024


class ConfigError(ValueError):
    """An environment variable has a value the edge refuses to start with."""


def _positive_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
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

    @property
    def users_version(self) -> str:
        return USERS_GENERATIONS[self.users_service]

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> EdgeSettings:
        overrides = overrides or {}
        users_service = overrides.get("USERS_SERVICE", os.environ.get("USERS_SERVICE", "users_v1"))
        if users_service not in USERS_GENERATIONS:
            raise ConfigError(
                f"USERS_SERVICE must be one of {sorted(USERS_GENERATIONS)}, got {users_service!r}."
            )
        return cls(
            amqp_uri=overrides.get(
                "AMQP_URI", os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
            ),
            users_service=users_service,
            rpc_timeout=float(overrides.get("RPC_TIMEOUT", _positive_float("RPC_TIMEOUT", 10.0))),
            ready_timeout=float(
                overrides.get("READY_TIMEOUT", _positive_float("READY_TIMEOUT", 2.0))
            ),
            retry_after=int(overrides.get("RETRY_AFTER", _positive_float("RETRY_AFTER", 5))),
        )
