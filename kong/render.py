"""Render the Kong declarative template for a P_VALUE: `kong-render` / `python -m kong.render`."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import yaml

from common import defaults
from kong.checks import REQUEST_SIZE_LIMIT_BYTES, ConfigProblem, check_config

TEMPLATE_NAME = "kong.yml.tmpl"
DEFAULT_P_VALUE = defaults.P_VALUE
DEFAULT_RATE_LIMIT_PER_SECOND = 2000
DEFAULT_EDGE_V1_PORT = defaults.EDGE_V1_PORT
DEFAULT_EDGE_V2_PORT = defaults.EDGE_V2_PORT

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


def template_text() -> str:
    return resources.files("kong").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def render(
    p_value: int | str,
    v1_target: str,
    v2_target: str,
    rate_limit_per_second: int = DEFAULT_RATE_LIMIT_PER_SECOND,
) -> str:
    """Fill the template and return kong.yml text; ValueError if the result breaks a rule."""
    p_value = parse_p_value(p_value)
    values = {
        "p_value": p_value,
        "v1_weight": p_value,
        "v2_weight": 100 - p_value,
        "v1_target": parse_target("v1 target", v1_target),
        "v2_target": parse_target("v2 target", v2_target),
        "rate_limit_per_second": parse_positive_int("rate limit", rate_limit_per_second),
        "body_limit_kib": REQUEST_SIZE_LIMIT_BYTES // 1024,
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


def render_from_env(env: Mapping[str, str]) -> str:
    """Render with every setting taken from env (local defaults: edges on 127.0.0.1)."""
    return render(
        env.get("P_VALUE", DEFAULT_P_VALUE),
        f"127.0.0.1:{env.get('EDGE_V1_PORT', DEFAULT_EDGE_V1_PORT)}",
        f"127.0.0.1:{env.get('EDGE_V2_PORT', DEFAULT_EDGE_V2_PORT)}",
        env.get("GATEWAY_RATE_LIMIT_PER_SECOND", DEFAULT_RATE_LIMIT_PER_SECOND),
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
            text = render(
                args.p_value,
                args.v1_target,
                args.v2_target,
                parse_positive_int("rate limit per second", args.rate_limit_per_second),
            )
    except ValueError as error:
        print(f"kong-render: {error}", file=sys.stderr)
        return 2
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomically(Path(args.output), text)
    return 0


def write_atomically(path: Path, text: str) -> None:
    # A reloading gateway must never read a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
