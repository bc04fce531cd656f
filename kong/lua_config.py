"""The local gateway's Lua table (gateway.json) derived from a rendered kong.yml.

Kong's plugin semantics are resolved here, in tested Python: which routes a location's
requests can match and in which order, each consumer's groups and own plugins, the key and
issuer lookups. kong/lua/gateway.lua only walks the result.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from common import defaults
from common.auth.store import ANONYMOUS
from common.tracing import sample_bound
from kong.problems import GATEWAY_PROBLEMS
from kong.routing import RouteEntry, plugins_of, rank


def _route(service: Mapping[str, Any], route: Mapping[str, Any]) -> dict[str, Any]:
    methods = route.get("methods")
    headers = route.get("headers")
    acl = plugins_of(route).get("acl")
    return {
        "name": route["name"],
        "service": service["name"],
        "methods": {m: True for m in methods} if methods else None,
        # Kong compares header values case-insensitively; Lua looks up the lowered value.
        "headers": {k: {v.lower(): True for v in vs} for k, vs in headers.items()}
        if headers
        else None,
        "auth": "key-auth" in plugins_of(service) or "jwt" in plugins_of(service),
        "acl": list(acl["allow"]) if acl else None,
    }


def _consumer(entry: Mapping[str, Any]) -> dict[str, Any]:
    plugins = plugins_of(entry)
    groups = [acl["group"] for acl in entry.get("acls") or []]
    add = plugins.get("response-transformer", {}).get("add", {}).get("headers") or []
    return {
        "id": entry["id"],
        "username": entry["username"],
        "groups": groups,
        "group_set": {g: True for g in groups},
        "anonymous": entry["username"] == ANONYMOUS,
        "rate_limiting": plugins.get("rate-limiting"),
        "add_headers": [h.split(":", 1) for h in add],
        "terminate": "request-termination" in plugins,
    }


_ID_LOW_BITS = 1 << 64


def trace_sampling(ratio: float) -> dict[str, Any]:
    """How kong/lua/traceparent.lua samples a trace it starts: as TraceIdRatioBased(ratio)
    does, by the trace id's low 64 bits, so the gateway's flag and an edge's own decision
    for the same id agree."""
    bound = sample_bound(ratio)
    return {
        "ratio": ratio,
        "all": bound >= _ID_LOW_BITS,
        "below": f"{min(bound, _ID_LOW_BITS - 1):016x}",
    }


def lua_config(
    config: Mapping[str, Any],
    groups: Sequence[Sequence[RouteEntry]],
    trace_sample_ratio: float = defaults.TRACE_SAMPLE_RATIO,
) -> dict:
    """`groups`: the route entries of each generated location group, in nginx.py's order;
    `trace_sample_ratio`: TRACE_SAMPLE_RATIO (common.tracing.sample_ratio)."""
    consumers = config.get("consumers") or []
    plugins = plugins_of(config)
    keys, issuers = {}, {}
    for entry in consumers:
        for credential in entry.get("keyauth_credentials") or []:
            keys[credential["key"]] = {"consumer": entry["username"], "id": credential["id"]}
        for secret in entry.get("jwt_secrets") or []:
            issuers[secret["key"]] = {
                "consumer": entry["username"],
                "algorithm": secret["algorithm"],
                "rsa_public_key": secret["rsa_public_key"],
            }
    return {
        "groups": [
            [_route(s, r) for s, r in sorted(group, key=lambda e: rank(e[1]), reverse=True)]
            for group in groups
        ],
        "consumers": {entry["username"]: _consumer(entry) for entry in consumers},
        "keys": keys,
        "issuers": issuers,
        "rate_limiting": plugins["rate-limiting"],
        "cors": plugins["cors"],
        "trace_sampling": trace_sampling(trace_sample_ratio),
        "titles": {str(status): title for status, (title, _) in GATEWAY_PROBLEMS.items()},
        "details": {str(status): detail for status, (_, detail) in GATEWAY_PROBLEMS.items()},
        # Kong's node_id label: stable per machine.
        "node_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, socket.gethostname())),
    }


def lua_config_json(
    config: Mapping[str, Any],
    groups: Sequence[Sequence[RouteEntry]],
    trace_sample_ratio: float = defaults.TRACE_SAMPLE_RATIO,
) -> str:
    table = lua_config(config, groups, trace_sample_ratio)
    return json.dumps(table, indent=1, sort_keys=True) + "\n"
