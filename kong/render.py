"""Render the Kong declarative template: `kong-render` / `python -m kong.render`.

Weights from P_VALUE, consumers from the credentials store (common/auth/store.py), browser
origins from CORS_ORIGINS, the opentelemetry plugin when KONG_OTEL_TRACES_ENDPOINT is set
(sampling new traces at TRACE_SAMPLE_RATIO, as the local gateway and the edges do).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import yaml

from common import defaults
from common.auth.store import ANONYMOUS, ENV_VAR, CredentialStore, load_store, store_path
from common.tracing import sample_ratio
from kong.checks import IDENTITY_HEADERS, REQUEST_SIZE_LIMIT_BYTES, ConfigProblem, check_config
from kong.consumers import KEY_REALM, render_consumers

TEMPLATE_NAME = "kong.yml.tmpl"
DEFAULT_P_VALUE = defaults.P_VALUE
DEFAULT_RATE_LIMIT_PER_SECOND = 2000
DEFAULT_EDGE_V1_PORT = defaults.EDGE_V1_PORT
DEFAULT_EDGE_V2_PORT = defaults.EDGE_V2_PORT

# Browsers may call the API from these origins unless CORS_ORIGINS says otherwise.
DEFAULT_CORS_ORIGINS = ("http://localhost:8000", "http://127.0.0.1:8000")
# Credentials only in headers: a key or token in a URL ends up in logs and browser history.
KEY_AUTH = {
    "key_names": ["apikey"],
    # The edge verifies the key itself from the same store (docs/security.md, "hide_credentials").
    "hide_credentials": False,
    "key_in_header": True,
    "key_in_query": False,
    "key_in_body": False,
    "anonymous": ANONYMOUS,
    "realm": KEY_REALM,
}
JWT = {
    "header_names": ["authorization"],
    "uri_param_names": [],
    "cookie_names": [],
    "key_claim_name": "iss",
    "claims_to_verify": ["exp"],
    "anonymous": ANONYMOUS,
}
CORS = {
    "methods": ["GET", "HEAD", "POST", "PUT", "OPTIONS"],
    "headers": ["apikey", "Authorization", "Content-Type", "X-Request-ID", "X-Users-Version",
                "traceparent", "tracestate"],
    "exposed_headers": ["X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining",
                        "RateLimit-Reset", "Retry-After", "X-Users-Version"],
    "max_age": 3600,
    "credentials": False,
    "preflight_continue": False,
}  # fmt: skip

# One regex for every /users route: /users, /users/, /users/{userId}[/...]; the named capture
# is what sticky balancing hashes on (Kong `hash_on: uri_capture`, kong/nginx.py's map).
USER_ID_CAPTURE = "userId"
USERS_PATH = f"~/users(?:/(?<{USER_ID_CAPTURE}>[^/]+))?(?:/|$)"
STICKY_BALANCING = (
    "    algorithm: consistent-hashing",
    "    hash_on: uri_capture",
    f"    hash_on_uri_capture: {USER_ID_CAPTURE}",
    # No userId (POST /users/): the correlation-id plugin's fresh uuid spreads it by weight.
    "    hash_fallback: header",
    "    hash_fallback_header: X-Request-ID",
)
ROUND_ROBIN_BALANCING = ("    algorithm: round-robin",)
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_TARGET = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$")


def parse_p_value(raw: object) -> int:
    """Return P_VALUE as an int in 0..100; anything else raises ValueError."""
    text = str(raw).strip() if raw is not None else ""
    # Only plain decimal digits: "1e2", "50.0", "+5" or " " are operator typos, not values.
    if re.fullmatch(r"-?[0-9]+", text) and 0 <= int(text) <= 100:
        return int(text)
    raise ValueError(
        f"P_VALUE must be an integer from 0 to 100 (the percentage of /users traffic "
        f"sent to v1; the rest goes to v2), got {raw!r}."
    )


def parse_positive_int(name: str, raw: object) -> int:
    text = str(raw).strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ValueError(f"{name} must be a positive integer, got {raw!r}.")


def parse_target(name: str, raw: str) -> str:
    if _TARGET.match(raw) and 0 < int(raw.rsplit(":", 1)[1]) < 65536:
        return raw
    raise ValueError(f"{name} must look like host:port (e.g. 127.0.0.1:8101), got {raw!r}.")


def parse_switch(name: str, raw: object) -> bool:
    text = str(raw).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"{name} must be on or off (1/0, true/false), got {raw!r}.")


def template_text() -> str:
    return resources.files("kong").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def parse_origins(raw: str | None) -> tuple[str, ...]:
    """CORS_ORIGINS: comma-separated `scheme://host[:port]` origins (or a single `*`)."""
    if raw is None or not raw.strip():
        return DEFAULT_CORS_ORIGINS
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            raise ValueError(f"CORS_ORIGINS: {origin!r} is not an origin like https://app.example")
    return origins


def tracing_plugins(
    traces_endpoint: str | None, trace_sample_ratio: float = defaults.TRACE_SAMPLE_RATIO
) -> str:
    """Kong's opentelemetry plugin (compose): continue a client's W3C traceparent or start one,
    sampled at `trace_sample_ratio` (TRACE_SAMPLE_RATIO; it overrides kong.conf's
    tracing_sampling_rate)."""
    if not traces_endpoint:
        return ""
    if not re.fullmatch(r"https?://\S+", traces_endpoint):
        raise ValueError(
            f"KONG_OTEL_TRACES_ENDPOINT must be an http(s) URL, got {traces_endpoint!r}"
        )
    plugin = {
        "name": "opentelemetry",
        "config": {
            "traces_endpoint": traces_endpoint,
            "sampling_rate": trace_sample_ratio,
            "resource_attributes": {"service.name": "kong"},
            "propagation": {"extract": ["w3c"], "inject": ["w3c"], "default_format": "w3c"},
        },
    }
    return f"  - {_flow(plugin)}\n"


def _flow(value: object) -> str:
    # JSON is YAML: one line the template can hold, quoting every string safely.
    return json.dumps(value, separators=(", ", ": "))


def _consumers_yaml(store: CredentialStore) -> str:
    text = yaml.safe_dump(render_consumers(store), sort_keys=False, width=1000)
    return "".join(f"  {line}\n" for line in text.splitlines())


def render(
    p_value: int | str,
    v1_target: str,
    v2_target: str,
    rate_limit_per_second: int = DEFAULT_RATE_LIMIT_PER_SECOND,
    *,
    store: CredentialStore | None = None,
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS,
    traces_endpoint: str | None = None,
    trace_sample_ratio: float = defaults.TRACE_SAMPLE_RATIO,
    sticky: bool = True,
) -> str:
    """Fill the template and return kong.yml text; ValueError if the result breaks a rule.

    Without a `store` no consumer but the anonymous placeholder exists: every protected
    route answers 401 (fail closed).
    """
    p_value = parse_p_value(p_value)
    values = {
        "p_value": p_value,
        "v1_weight": p_value,
        "v2_weight": 100 - p_value,
        "v1_target": parse_target("v1 target", v1_target),
        "v2_target": parse_target("v2 target", v2_target),
        "rate_limit_per_second": parse_positive_int("rate limit", rate_limit_per_second),
        "body_limit_kib": REQUEST_SIZE_LIMIT_BYTES // 1024,
        "key_auth": _flow(KEY_AUTH),
        "jwt": _flow(JWT),
        "identity_headers": _flow(list(IDENTITY_HEADERS)),
        "cors": _flow({"origins": list(cors_origins), **CORS}),
        "tracing_plugins": tracing_plugins(traces_endpoint, trace_sample_ratio),
        "consumers": _consumers_yaml(store or CredentialStore()),
        "users_path": USERS_PATH,
        "users_balancing": "\n".join(STICKY_BALANCING if sticky else ROUND_ROBIN_BALANCING),
    }

    def substitute(match: re.Match[str]) -> str:
        return str(values[match.group(1)])  # KeyError = template/renderer mismatch, a bug

    text = _PLACEHOLDER.sub(substitute, template_text())
    problems = check_config(yaml.safe_load(text))
    if problems:
        raise ConfigProblem(problems)
    return text


def render_k8s_weights(p_value: int) -> str:
    """Kustomize JSON patch: the v1/v2 backend weights of the users-split HTTPRoutes."""
    p_value = parse_p_value(p_value)
    lines = [
        f"# Rendered by `kong-render --k8s-weights --p-value {p_value}` (kong/render.py): do not",
        f"# edit. P_VALUE={p_value}: {p_value}% of /users traffic to v1, the rest to v2.",
    ]
    # `test` first: a reordered backendRefs list fails the build instead of swapping weights.
    for index, (edge, weight) in enumerate((("edge-v1", p_value), ("edge-v2", 100 - p_value))):
        path = f"/spec/rules/0/backendRefs/{index}"
        lines += [f"- op: test\n  path: {path}/name\n  value: {edge}"]
        lines += [f"- op: replace\n  path: {path}/weight\n  value: {weight}"]
    return "\n".join(lines) + "\n"


def credentials_path(env: Mapping[str, str], run_dir: Path | None = None) -> Path:
    """$AUTH_CREDENTIALS_FILE from `env`, else the store under `run_dir` (default .run)."""
    explicit = str(env.get(ENV_VAR, "")).strip()
    return Path(explicit) if explicit else store_path(run_dir)


def read_store(path: Path) -> CredentialStore | None:
    """The store at `path`, or None when there is none yet (a malformed one raises)."""
    try:
        return load_store(path)
    except FileNotFoundError:
        return None


def render_from_env(env: Mapping[str, str], run_dir: Path | None = None) -> str:
    """Render with every setting taken from env (local defaults: edges on 127.0.0.1)."""
    return render_for_targets(
        env,
        f"127.0.0.1:{env.get('EDGE_V1_PORT', DEFAULT_EDGE_V1_PORT)}",
        f"127.0.0.1:{env.get('EDGE_V2_PORT', DEFAULT_EDGE_V2_PORT)}",
        run_dir,
    )


def render_for_targets(
    env: Mapping[str, str], v1_target: str, v2_target: str, run_dir: Path | None = None
) -> str:
    """Render for the given edges with the other settings from env (Kong in compose)."""
    return render(
        env.get("P_VALUE", DEFAULT_P_VALUE),
        v1_target,
        v2_target,
        env.get("GATEWAY_RATE_LIMIT_PER_SECOND", DEFAULT_RATE_LIMIT_PER_SECOND),
        store=read_store(credentials_path(env, run_dir)),
        cors_origins=parse_origins(env.get("CORS_ORIGINS")),
        traces_endpoint=env.get("KONG_OTEL_TRACES_ENDPOINT") or None,
        trace_sample_ratio=sample_ratio(env),
        sticky=parse_switch("GATEWAY_STICKY_USERS", env.get("GATEWAY_STICKY_USERS", "on")),
    )


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kong-render",
        description="Render the Kong DB-less config (kong.yml) for a strangler P_VALUE.",
    )
    parser.add_argument(
        "--p-value",
        default=env.get("P_VALUE", str(DEFAULT_P_VALUE)),
        help=f"percentage of /users to v1, 0..100 (default: $P_VALUE or {DEFAULT_P_VALUE})",
    )
    parser.add_argument(
        "--v1-target",
        default=f"127.0.0.1:{env.get('EDGE_V1_PORT', DEFAULT_EDGE_V1_PORT)}",
        help="host:port of the v1 edge (default: 127.0.0.1:$EDGE_V1_PORT)",
    )
    parser.add_argument(
        "--v2-target",
        default=f"127.0.0.1:{env.get('EDGE_V2_PORT', DEFAULT_EDGE_V2_PORT)}",
        help="host:port of the v2 edge (default: 127.0.0.1:$EDGE_V2_PORT)",
    )
    parser.add_argument(
        "--rate-limit-per-second",
        default=env.get("GATEWAY_RATE_LIMIT_PER_SECOND", str(DEFAULT_RATE_LIMIT_PER_SECOND)),
        help="requests per second per client IP (default: $GATEWAY_RATE_LIMIT_PER_SECOND or "
        f"{DEFAULT_RATE_LIMIT_PER_SECOND})",
    )
    parser.add_argument(
        "--credentials",
        default=None,
        help="credentials store to render consumers from (default: $AUTH_CREDENTIALS_FILE or "
        ".run/auth/credentials.json; none = no consumer, every protected route 401)",
    )
    parser.add_argument(
        "--sticky-users",
        default=env.get("GATEWAY_STICKY_USERS", "on"),
        help="on: one user stays on one generation (hash on the path's userId); off: "
        "weighted round-robin per request (default: $GATEWAY_STICKY_USERS or on)",
    )
    parser.add_argument(
        "--k8s-weights",
        action="store_true",
        help="render the Kubernetes HTTPRoute weights patch (deploy/k8s) instead of kong.yml",
    )
    parser.add_argument(
        "-o", "--output", default="-", help="file to write (default: - for stdout)"
    )
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    try:
        if args.k8s_weights:
            text = render_k8s_weights(parse_p_value(args.p_value))
        else:
            path = Path(args.credentials) if args.credentials else credentials_path(env)
            store = read_store(path)
            if store is None:
                print(f"kong-render: no credentials store at {path}", file=sys.stderr)
            text = render(
                args.p_value,
                args.v1_target,
                args.v2_target,
                parse_positive_int("rate limit per second", args.rate_limit_per_second),
                store=store,
                cors_origins=parse_origins(env.get("CORS_ORIGINS")),
                traces_endpoint=env.get("KONG_OTEL_TRACES_ENDPOINT") or None,
                trace_sample_ratio=sample_ratio(env),
                sticky=parse_switch("--sticky-users", args.sticky_users),
            )
    except ValueError as error:
        print(f"kong-render: {error}", file=sys.stderr)
        return 2
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomically(Path(args.output), text)
    return 0


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    # A reloading gateway must never read a half-written file; 0600: it holds API keys.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(text)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
