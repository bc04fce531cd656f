"""The stack's settings: the environment over `.env` over the shared defaults, checked once.

Every process the stack starts inherits `StackSettings.env`; the typed fields are parsed
from it here, once, so a bad value is refused before anything starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlparse

from common import defaults
from kong.render import parse_p_value

DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "AMQP_URI": defaults.AMQP_URI,
        "MONGO_URI": defaults.MONGO_URI,
        "MONGO_DB": defaults.MONGO_DB,
        "P_VALUE": str(defaults.P_VALUE),
        "GATEWAY_PORT": str(defaults.GATEWAY_PORT),
        "EDGE_V1_PORT": str(defaults.EDGE_V1_PORT),
        "EDGE_V2_PORT": str(defaults.EDGE_V2_PORT),
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
)
# The variable carrying each listening component's port (the gateway is rendered from them).
PORT_VARIABLES: Mapping[str, str] = MappingProxyType(
    {"gateway": "GATEWAY_PORT", "edge-v1": "EDGE_V1_PORT", "edge-v2": "EDGE_V2_PORT"}
)


class SettingsError(ValueError):
    """A setting has a value the stack refuses to start with."""


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (comments and blank lines skipped)."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def _port(name: str, raw: str) -> int:
    if raw.strip().isdigit() and 0 < int(raw) < 65536:
        return int(raw)
    raise SettingsError(f"{name} must be a TCP port number (1..65535), got {raw!r}.")


@dataclass(frozen=True)
class StackSettings:
    env: Mapping[str, str]
    p_value: int
    ports: Mapping[str, int]

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = None
    ) -> StackSettings:
        """The environment wins over `dotenv`, which wins over DEFAULTS."""
        env = dict(os.environ if environ is None else environ)
        for key, value in (read_dotenv(dotenv) if dotenv else {}).items():
            env.setdefault(key, value)
        return cls.from_env(env)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StackSettings:
        """Fill in DEFAULTS, then refuse a bad P_VALUE or port (SettingsError)."""
        env = {**DEFAULTS, **env}
        try:
            p_value = parse_p_value(env["P_VALUE"])
        except ValueError as error:
            raise SettingsError(str(error)) from None
        ports = {name: _port(key, env[key]) for name, key in PORT_VARIABLES.items()}
        parsed = urlparse(env["MONGO_URI"])
        ports["mongo"] = parsed.port or 27017
        return cls(MappingProxyType(env), p_value, MappingProxyType(ports))

    @property
    def amqp_uri(self) -> str:
        return self.env["AMQP_URI"]

    @property
    def mongo_host(self) -> str:
        return urlparse(self.env["MONGO_URI"]).hostname or "localhost"

    def broker_address(self) -> tuple[str, int]:
        parsed = urlparse(self.amqp_uri)
        return parsed.hostname or "localhost", parsed.port or 5672
