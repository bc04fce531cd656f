"""Rules `deck validate` does not check: format version, weights, paths, required plugins,
authentication on every protected route with SPEC §7's groups, consumers and their limits.

`deck_validate` runs decK's offline schema check on a rendered file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from common import defaults
from common.auth import acl
from common.auth.store import ANONYMOUS
from kong.routing import plugins_of, python_regex, routes, select_route

FORMAT_VERSION = "3.0"
MAX_WEIGHT = 1000
REQUEST_SIZE_LIMIT_BYTES = defaults.MAX_BODY_BYTES
_TARGET = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$")
_SIZE_UNITS = {"bytes": 1, "kilobytes": 1024, "megabytes": 1024 * 1024}
# Identity headers Kong sets upstream; a client's copies must never reach an edge.
IDENTITY_HEADERS = (
    "X-Consumer-ID",
    "X-Consumer-Custom-ID",
    "X-Consumer-Username",
    "X-Consumer-Groups",
    "X-Credential-Identifier",
    "X-Anonymous-Consumer",
    "X-Authenticated-Groups",
)
# The pin header values a request may carry (kong.yml.tmpl's X-Users-Version routes).
_PINS = ({}, {"X-Users-Version": "v1"}, {"X-Users-Version": "v2"})


class ConfigProblem(ValueError):
    """A rendered config breaks project rules; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid Kong config: " + "; ".join(problems))
        self.problems = problems


def check_config(config: Any) -> list[str]:
    """Return every rule the parsed kong.yml breaks (empty list = fine)."""
    if not isinstance(config, Mapping):
        return ["the file is not a YAML mapping"]
    problems: list[str] = []
    if str(config.get("_format_version")) != FORMAT_VERSION:
        problems.append(f"_format_version must be {FORMAT_VERSION!r} (Kong 3.x)")
    if "_transform" in config:
        problems.append("_transform is not allowed (decK rejects it)")
    upstreams = {u.get("name"): u for u in config.get("upstreams") or []}
    problems += _check_upstreams(upstreams)
    problems += _check_services(config.get("services") or [], upstreams)
    problems += _check_uri_captures(config.get("services") or [], upstreams)
    problems += _check_plugins(config.get("plugins") or [])
    problems += _check_access(config)
    problems += _check_consumers(config.get("consumers") or [])
    return problems


def _check_upstreams(upstreams: Mapping[str, Mapping]) -> list[str]:
    problems = []
    for name, upstream in upstreams.items():
        targets = upstream.get("targets") or []
        if not targets:
            problems.append(f"upstream {name}: no targets")
        for target in targets:
            weight = target.get("weight")
            if not isinstance(weight, int) or isinstance(weight, bool):
                problems.append(f"upstream {name}: weight {weight!r} is not an integer")
            elif not 0 <= weight <= MAX_WEIGHT:
                problems.append(f"upstream {name}: weight {weight} outside 0..{MAX_WEIGHT}")
            if not _TARGET.match(str(target.get("target"))):
                problems.append(f"upstream {name}: target {target.get('target')!r} not host:port")
        if targets and not any(
            isinstance(t.get("weight"), int) and t["weight"] > 0 for t in targets
        ):
            problems.append(f"upstream {name}: every target has weight 0, nothing can serve")
    return problems


def _check_services(services: list[Mapping], upstreams: Mapping[str, Mapping]) -> list[str]:
    problems = []
    route_names: set[str] = set()
    for service in services:
        name = service.get("name")
        if service.get("host") not in upstreams:
            problems.append(f"service {name}: host {service.get('host')!r} is not an upstream")
        if not service.get("routes"):
            problems.append(f"service {name}: no routes")
        for route in service.get("routes") or []:
            route_name = route.get("name")
            if route_name in route_names:
                problems.append(f"route {route_name}: name used twice")
            route_names.add(route_name)
            if route.get("strip_path") is not False:
                problems.append(f"route {route_name}: strip_path must be false")
            if not route.get("paths"):
                problems.append(f"route {route_name}: no paths")
            for path in route.get("paths") or []:
                if not (str(path).startswith("/") or str(path).startswith("~/")):
                    problems.append(f"route {route_name}: path {path!r} must start with / or ~/")
                elif str(path).startswith("~"):
                    try:
                        re.compile(python_regex(str(path)[1:]))
                    except re.error as error:
                        problems.append(f"route {route_name}: bad regex {path!r}: {error}")
    return problems


def _check_uri_captures(services: list[Mapping], upstreams: Mapping[str, Mapping]) -> list[str]:
    """An upstream hashing on a URI capture: some route reaching it has a path naming it
    (routes without it, like the edge meta pages, use the fallback)."""
    problems = []
    for name, upstream in upstreams.items():
        if upstream.get("hash_on") != "uri_capture":
            continue
        capture = upstream.get("hash_on_uri_capture")
        paths = [
            str(path)
            for service in services
            if service.get("host") == name
            for route in service.get("routes") or []
            for path in route.get("paths") or []
        ]
        if not capture or not any(f"(?<{capture}>" in path for path in paths):
            problems.append(f"upstream {name}: no route path captures {capture!r}")
    return problems


def _check_plugins(plugins: list[Mapping]) -> list[str]:
    by_name = {p.get("name"): p.get("config") or {} for p in plugins}
    problems = []
    correlation = by_name.get("correlation-id")
    if correlation is None:
        problems.append("plugin correlation-id missing")
    elif correlation.get("header_name") != "X-Request-ID" or not correlation.get(
        "echo_downstream"
    ):
        problems.append("plugin correlation-id must use X-Request-ID and echo_downstream")
    size = by_name.get("request-size-limiting")
    if size is None:
        problems.append("plugin request-size-limiting missing")
    elif request_size_limit_bytes(size) != REQUEST_SIZE_LIMIT_BYTES:
        problems.append(f"plugin request-size-limiting must allow {REQUEST_SIZE_LIMIT_BYTES} B")
    rate = by_name.get("rate-limiting")
    if rate is None:
        problems.append("plugin rate-limiting missing")
    elif rate.get("policy") != "local" or not isinstance(rate.get("second"), int):
        problems.append("plugin rate-limiting must use policy local with a per-second limit")
    if rate is not None and rate.get("limit_by") != "ip":
        problems.append("plugin rate-limiting (global) must limit by ip")
    if not (by_name.get("cors") or {}).get("origins"):
        problems.append("plugin cors missing or without origins")
    prometheus = by_name.get("prometheus")
    # The dashboard and alerts read kong_http_requests_total{code} and the latency series.
    if prometheus is None:
        problems.append("plugin prometheus missing")
    elif not (prometheus.get("status_code_metrics") and prometheus.get("latency_metrics")):
        problems.append("plugin prometheus must export status_code_metrics and latency_metrics")
    elif not prometheus.get("per_consumer"):
        problems.append("plugin prometheus must label by consumer (per_consumer)")
    return problems


def _sample_path(pattern: str) -> str:
    # acl.ROUTES paths are regexes over ids: one concrete path for each.
    return pattern.replace("[^/]+", "x1").replace("/?", "")


def _check_access(config: Mapping) -> list[str]:
    """Each SPEC §7 route needs its group (and both credentials); open paths need none."""
    problems = []
    for rule in acl.ROUTES:
        path = _sample_path(rule.path)
        for pin in _PINS:
            found = select_route(config, rule.method, path, pin)
            if found is None:
                problems.append(f"{rule.method} {path} {pin}: no route")
                continue
            service, route = found
            allow = plugins_of(route).get("acl", {}).get("allow")
            if allow != [rule.group]:
                problems.append(f"route {route['name']}: acl must allow [{rule.group!r}]")
            problems += _check_auth(service)
    for pattern in acl.OPEN_PATHS:
        path = _sample_path(pattern).replace("\\", "")
        found = select_route(config, "GET", path)
        if found is None:
            problems.append(f"open path {path}: no route")
        elif "key-auth" in plugins_of(found[0]) or "acl" in plugins_of(found[1]):
            problems.append(f"open path {path}: route {found[1]['name']} needs credentials")
    if select_route(config, "GET", "/ready") is not None:
        problems.append("/ready is the edge's own probe: the gateway must not route it")
    for service, route in routes(config):
        protected = "key-auth" in plugins_of(service) and "acl" in plugins_of(route)
        removed = plugins_of(route).get("request-transformer", {}).get("remove", {})
        if not protected and set(IDENTITY_HEADERS) - set(removed.get("headers") or []):
            problems.append(f"route {route['name']}: must remove client identity headers")
    return problems


def _check_auth(service: Mapping) -> list[str]:
    plugins = plugins_of(service)
    key_auth, jwt = plugins.get("key-auth"), plugins.get("jwt")
    name = service.get("name")
    if key_auth is None or jwt is None:
        return [f"service {name}: key-auth and jwt must both be on"]
    problems = []
    if key_auth.get("key_names") != ["apikey"] or key_auth.get("anonymous") != ANONYMOUS:
        problems.append(f"service {name}: key-auth must read `apikey` with anonymous set")
    # DECISION (AUTH-CONTRACT): the edge verifies the key itself, so the gateway passes it on.
    if key_auth.get("hide_credentials") is not False:
        problems.append(f"service {name}: key-auth must keep hide_credentials false")
    if "exp" not in (jwt.get("claims_to_verify") or []) or jwt.get("anonymous") != ANONYMOUS:
        problems.append(f"service {name}: jwt must verify exp with anonymous set")
    return problems


def _check_consumers(consumers: list[Mapping]) -> list[str]:
    by_name = {c.get("username"): c for c in consumers}
    problems = []
    anonymous = by_name.get(ANONYMOUS)
    if anonymous is None:
        problems.append("consumer anonymous missing")
    else:
        termination = plugins_of(anonymous).get("request-termination", {})
        if termination.get("status_code") != 401:
            problems.append("consumer anonymous: request-termination must answer 401")
        added = plugins_of(anonymous).get("response-transformer", {}).get("add", {})
        if not any(h.startswith("WWW-Authenticate:") for h in added.get("headers") or []):
            problems.append("consumer anonymous: its 401s must carry WWW-Authenticate")
        if anonymous.get("acls") or anonymous.get("keyauth_credentials"):
            problems.append("consumer anonymous must have no groups and no keys")
    for consumer in consumers:
        name = consumer.get("username")
        for secret in consumer.get("jwt_secrets") or []:
            if secret.get("algorithm") != "RS256" or "BEGIN PUBLIC KEY" not in str(
                secret.get("rsa_public_key")
            ):
                problems.append(f"consumer {name}: jwt secret {secret.get('key')!r} not RS256")
        for plugin in consumer.get("plugins") or []:
            config = plugin.get("config") or {}
            if plugin["name"] == "rate-limiting" and (
                config.get("limit_by") != "consumer" or config.get("policy") != "local"
            ):
                problems.append(f"consumer {name}: rate-limiting must be local, by consumer")
    return problems


def request_size_limit_bytes(plugin_config: Mapping) -> int:
    """Kong's allowed_payload_size in bytes (Kong's units are binary: 1 kilobyte = 1024 B)."""
    unit = plugin_config.get("size_unit", "megabytes")
    return int(plugin_config.get("allowed_payload_size", 128)) * _SIZE_UNITS[unit]


def deck_binary() -> str:
    path = shutil.which("deck")
    if path is None:
        raise RuntimeError(
            "decK is not installed: run scripts/bootstrap.sh (apt-get install -y deck)."
        )
    return path


# Kong 3 upstream fields Debian's decK 1.4.0 (2021) predates; check_config checks them.
_NEWER_THAN_DECK = ("hash_on_uri_capture", "hash_fallback_uri_capture")


def deck_validate(path: Path) -> None:
    """Run `deck validate` offline on a rendered file; raise RuntimeError with its output."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for upstream in config.get("upstreams") or [] if isinstance(config, dict) else []:
        for key in _NEWER_THAN_DECK:
            upstream.pop(key, None)
    result = subprocess.run(
        [deck_binary(), "validate", "--no-color", "-s", "-"],
        input=yaml.safe_dump(config, sort_keys=False),
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise RuntimeError(f"deck validate {path} failed:\n{result.stdout}{result.stderr}")
