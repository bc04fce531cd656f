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

from common.auth.store import ANONYMOUS
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


def lua_config(config: Mapping[str, Any], groups: Sequence[Sequence[RouteEntry]]) -> dict:
    """`groups`: the route entries of each generated location group, in nginx.py's order."""
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
        "titles": {str(status): title for status, (title, _) in GATEWAY_PROBLEMS.items()},
        "details": {str(status): detail for status, (_, detail) in GATEWAY_PROBLEMS.items()},
        # Kong's node_id label: stable per machine.
        "node_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, socket.gethostname())),
    }


def lua_config_json(config: Mapping[str, Any], groups: Sequence[Sequence[RouteEntry]]) -> str:
    return json.dumps(lua_config(config, groups), indent=1, sort_keys=True) + "\n"
