"""Which ACL group each route needs (SPEC §7), one table for the edges and the gateways' checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

USERS_READ = "users:read"
USERS_WRITE = "users:write"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
GROUPS: tuple[str, ...] = (USERS_READ, USERS_WRITE, ORDERS_READ, ORDERS_WRITE)

_ID = r"[^/]+"


@dataclass(frozen=True)
class RouteRule:
    method: str
    path: str  # a regex matched against the whole path (both slash forms, SPEC §2)
    group: str

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.path, path) is not None


ROUTES: tuple[RouteRule, ...] = (
    RouteRule("GET", rf"/users/{_ID}/?", USERS_READ),
    RouteRule("POST", r"/users/?", USERS_WRITE),
    RouteRule("PUT", rf"/users/{_ID}/?", USERS_WRITE),
    RouteRule("GET", r"/orders/?", ORDERS_READ),
    RouteRule("GET", rf"/orders/{_ID}/?", ORDERS_READ),
    RouteRule("POST", r"/orders/?", ORDERS_WRITE),
    RouteRule("PUT", rf"/orders/{_ID}/status/?", ORDERS_WRITE),
    RouteRule("PUT", rf"/orders/{_ID}/details/?", ORDERS_WRITE),
)

# Answered without credentials: GET (and HEAD, which Flask and nginx answer as GET).
OPEN_PATHS: tuple[str, ...] = (r"/health", r"/docs/?", r"/docs/assets/[^/]+", r"/openapi\.json")
# The edge's own readiness probe (kubelets, the launcher); the gateway does not route it.
EDGE_OPEN_PATHS: tuple[str, ...] = (*OPEN_PATHS, r"/ready")


# Everything under these needs credentials, whatever the method (an unknown method is 405
# only for a caller the gateway let through; like Kong, which authenticates per route first).
PROTECTED_PREFIXES: tuple[str, ...] = ("/users", "/orders")


def is_protected(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


def group_for(method: str, path: str) -> str | None:
    """The group a request needs, or None when no route of SPEC §2 matches (404/405 later)."""
    method = "GET" if method == "HEAD" else method
    for rule in ROUTES:
        if rule.matches(method, path):
            return rule.group
    return None


def is_open(method: str, path: str, paths: tuple[str, ...] = OPEN_PATHS) -> bool:
    """True when `method path` needs no credentials (GET/HEAD on an open path)."""
    return method in ("GET", "HEAD") and any(re.fullmatch(p, path) for p in paths)
