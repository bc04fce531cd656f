""".env.example against the settings modules: every variable the code reads is documented,
with the default the code really uses (as test_compose.py checks the compose file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common import defaults
from http_edge.config import DEFAULTS as EDGE_DEFAULTS
from kong.render import DEFAULT_RATE_LIMIT_PER_SECOND
from launch.settings import DEFAULTS as STACK_DEFAULTS
from tests.support import ROOT

ENV_EXAMPLE = (ROOT / ".env.example").read_text()
# KEY=value, or "# KEY=value" for a variable documented but set per process.
DOCUMENTED = dict(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, re.M))
CONFIG_TEXT = (ROOT / "config.yaml").read_text()
# nameko's ${VAR:default} substitutions in the workers' config.
CONFIG_DEFAULTS = dict(re.findall(r"\$\{([A-Z][A-Z0-9_]*):([^}]*)\}", CONFIG_TEXT))
COMPOSE_VARIABLES = set(
    re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker" / "docker-compose.yml").read_text())
)
READS = re.compile(
    r"""(?:environ\.get|env\.get|environ\[|env\[|_int|_seconds|_positive_float)\(?\s*["']([A-Z][A-Z0-9_]*)["']"""
)
# Read by the interpreter or set by the launcher for its children, not by an operator.
NOT_SETTINGS = {"PYTHONPATH", "PYTHONWARNINGS", "HOME"}


def variables_read_by(*folders: str) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in Path(ROOT, folder).rglob("*.py"):
            found.update(READS.findall(path.read_text()))
    return found - NOT_SETTINGS


def test_the_scan_sees_what_the_edge_and_the_gateway_read():
    # The scan must find known reads, or the next test would pass on an empty set.
    assert {"RPC_TIMEOUT", "GUNICORN_THREADS", "GATEWAY_HOST", "P_VALUE"} <= variables_read_by(
        "http_edge", "kong"
    )


def test_every_variable_the_code_reads_is_documented():
    read = variables_read_by(
        "common", "http_edge", "kong", "launch", "scripts", "workers", "rollout"
    )
    read |= set(CONFIG_DEFAULTS) | COMPOSE_VARIABLES | (set(STACK_DEFAULTS) - NOT_SETTINGS)
    assert read - set(DOCUMENTED) == set()


def test_nothing_documented_is_read_by_nobody():
    read = variables_read_by(
        "common", "http_edge", "kong", "launch", "scripts", "workers", "rollout"
    )
    assert set(DOCUMENTED) - read - set(CONFIG_DEFAULTS) - COMPOSE_VARIABLES == set()


@pytest.mark.parametrize("name", sorted(set(STACK_DEFAULTS) - NOT_SETTINGS))
def test_the_stack_defaults_are_the_documented_ones(name):
    assert DOCUMENTED[name] == STACK_DEFAULTS[name]


@pytest.mark.parametrize("name", sorted(EDGE_DEFAULTS))
def test_the_edge_defaults_are_the_documented_ones(name):
    default = EDGE_DEFAULTS[name]
    assert type(default)(DOCUMENTED[name]) == default


@pytest.mark.parametrize("name", sorted(CONFIG_DEFAULTS))
def test_the_workers_config_defaults_are_the_documented_ones(name):
    assert DOCUMENTED[name] == CONFIG_DEFAULTS[name]


def test_the_workers_config_falls_back_to_the_shared_defaults():
    # config.yaml cannot import: its fallbacks for the shared keys are held to common.defaults.
    assert CONFIG_DEFAULTS["AMQP_URI"] == defaults.AMQP_URI
    assert CONFIG_DEFAULTS["MONGO_URI"] == defaults.MONGO_URI
    assert CONFIG_DEFAULTS["MONGO_DB"] == defaults.MONGO_DB


def test_the_gateway_defaults_are_the_documented_ones():
    assert DOCUMENTED["GATEWAY_HOST"] == defaults.GATEWAY_HOST
    assert float(DOCUMENTED["TRACE_SAMPLE_RATIO"]) == defaults.TRACE_SAMPLE_RATIO
    assert int(DOCUMENTED["GATEWAY_RATE_LIMIT_PER_SECOND"]) == DEFAULT_RATE_LIMIT_PER_SECOND


LITERAL_DEFAULTS = re.compile(
    r"""(?:environ\.get|env\.get|_int|_seconds)\(["']([A-Z][A-Z0-9_]*)["'],\s*(?:["']([^"']*)["']|([0-9.]+))\)"""
)


def literal_defaults() -> list[tuple[str, str, str]]:
    """(file, variable, default) for every default written as a literal at its read."""
    found = []
    for folder in ("common", "http_edge", "kong", "launch", "scripts", "workers"):
        for path in Path(ROOT, folder).rglob("*.py"):
            for name, text, number in LITERAL_DEFAULTS.findall(path.read_text()):
                found.append((str(path.relative_to(ROOT)), name, text or number))
    return found


def test_the_scan_sees_the_gunicorn_defaults():
    assert ("http_edge/gunicorn_conf.py", "GUNICORN_THREADS", "4") in literal_defaults()


@pytest.mark.parametrize(("path", "name", "default"), literal_defaults())
def test_defaults_written_where_they_are_read_are_the_documented_ones(path, name, default):
    documented = DOCUMENTED[name]
    try:
        assert float(documented) == float(default), path
    except ValueError:
        assert documented.lower() == default.lower(), path  # LOG_LEVEL: INFO or info


def test_the_workers_fallbacks_are_their_config_defaults():
    # Used when a nameko config lacks the key (test containers); held to config.yaml.
    from workers.orders import DEFAULT_USERS_RPC_SERVICE
    from workers.runtime.mongo import DEFAULT_MONGO_TIMEOUT_MS

    assert int(CONFIG_DEFAULTS["MONGO_TIMEOUT_MS"]) == DEFAULT_MONGO_TIMEOUT_MS
    assert CONFIG_DEFAULTS["USERS_RPC_SERVICE"] == DEFAULT_USERS_RPC_SERVICE
