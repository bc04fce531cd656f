"""Which route of a rendered kong.yml serves a request, ranked as Kong 3 ranks them.

Kong prefers a route with a header condition, then one with methods, then the longest
path; kong/checks.py and the local gateway's route table (kong/nginx.py) both use this.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

RouteEntry = tuple[Mapping[str, Any], Mapping[str, Any]]  # (service, route)


def routes(config: Mapping[str, Any]) -> Iterator[RouteEntry]:
    for service in config.get("services") or []:
        for route in service.get("routes") or []:
            yield service, route


def rank(route: Mapping[str, Any]) -> tuple[bool, bool]:
    """Higher sorts first: a header condition outranks methods, methods outrank nothing."""
    return bool(route.get("headers")), bool(route.get("methods"))


def python_regex(pcre: str) -> str:
    """A Kong (PCRE) path regex in Python's dialect: `(?<name>` is spelt `(?P<name>`."""
    return re.sub(r"\(\?<(?=\w)", "(?P<", pcre)


def path_match_length(spec: str, path: str) -> int:
    """How much of `path` a Kong path (`/prefix` or `~regex`, anchored at the start) matches;
    -1 when it does not."""
    if spec.startswith("~"):
        try:
            found = re.match(python_regex(spec[1:]), path)
        except re.error:
            return -1  # reported by kong.checks as a bad regex
        return found.end() if found else -1
    return len(spec) if path.startswith(spec) else -1


def headers_match(route: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    wanted = route.get("headers") or {}
    lowered = {k.lower(): v for k, v in headers.items()}
    # Kong compares header values case-insensitively.
    return all(
        lowered.get(name.lower(), "").lower() in {v.lower() for v in values}
        for name, values in wanted.items()
    )


def select_route(
    config: Mapping[str, Any], method: str, path: str, headers: Mapping[str, str] | None = None
) -> RouteEntry | None:
    """The (service, route) Kong would pick for this request, or None (Kong's 404)."""
    headers = headers or {}
    best: tuple[tuple[bool, bool, int], RouteEntry] | None = None
    for service, route in routes(config):
        methods = route.get("methods")
        if methods and method not in methods:
            continue
        if not headers_match(route, headers):
            continue
        length = max(path_match_length(str(p), path) for p in route.get("paths") or ["/"])
        if length < 0:
            continue
        key = (*rank(route), length)
        if best is None or key > best[0]:
            best = (key, (service, route))
    return best[1] if best else None


def plugins_of(entity: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """An entity's plugins by name (its `config`, {} when none)."""
    return {p["name"]: p.get("config") or {} for p in entity.get("plugins") or []}
