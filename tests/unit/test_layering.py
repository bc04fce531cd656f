"""The import graph goes one way: no package imports one above it (issue 12 item 7)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> module prefixes it must never import
FORBIDDEN = {
    "schemas": ("workers", "http_edge", "common", "launch", "kong", "scripts", "bench"),
    "common": ("workers", "http_edge", "launch", "kong", "scripts", "bench"),
    "workers/runtime": ("workers.users", "workers.orders", "workers.db", "http_edge", "launch"),
    "workers/users": ("workers.orders", "workers.db", "http_edge", "launch"),
    "workers/orders": ("workers.users", "workers.db", "http_edge", "launch"),
    "workers/db": ("http_edge", "launch"),
    # the edge talks to the workers over RPC only; their typed errors are the public API
    "http_edge": ("workers.runtime", "workers.users", "workers.orders", "workers.db", "launch"),
    "kong": ("workers", "http_edge", "launch"),
    "launch": ("scripts", "bench", "tests"),
    # the rollout drives the gateway and reads metrics over HTTP; it never imports a tier
    "rollout": ("workers", "http_edge", "scripts", "bench", "tests"),
}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package):
    offending = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if any(module == f or module.startswith(f + ".") for f in FORBIDDEN[package])
    ]
    assert offending == []


def test_every_package_says_what_lives_there():
    packages = [p for p in ROOT.glob("*/**/__init__.py") if not p.is_relative_to(ROOT / ".venv")]
    silent = [
        str(p.relative_to(ROOT))
        for p in packages
        if p.parts[len(ROOT.parts)]
        in {"workers", "common", "launch", "schemas", "http_edge", "kong", "rollout"}
        and ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert silent == []
