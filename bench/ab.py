"""`python -m bench.ab`: A/B two versions of one source file on the bench stack.

    .venv/bin/python -m bench.ab --file http_edge/rpc.py --a old_rpc.py --b new_rpc.py \\
        --restart edge-v1 [--rounds 2] [--seconds 5] [--concurrency 8 32] [--op put|orders]
    .venv/bin/python -m bench.ab --op propagation --file workers/users/domain.py \\
        --a inline.py --b after_reply.py --restart users_v1 users_v2
    .venv/bin/python -m bench.ab --env-a TRACE_SAMPLE_RATIO=0 --env-b TRACE_SAMPLE_RATIO=1 \\
        --restart gateway edge-v1 users_v1
    .venv/bin/python -m bench.ab --file kong/lua/gateway.lua --a on.lua --b off.lua \\
        --file http_edge/app.py --a on.py --b off.py --restart gateway edge-v1

Brings up the isolated bench stack once, then for each round in the order A B B A (so slow
drift of the shared machine hits both sides alike) installs that version of `--file` and/or
that variant's environment (`--env-a` / `--env-b`, added to the restarted components' own;
`--file` may be repeated, each with its own `--a`/`--b`, for a feature spread over files),
restarts only the `--restart` components, and measures the baseline's `POST /users/` and
the gateway's `--op` (POST /users/ or PUT /users/{id}) back to back at each concurrency;
`--op orders` measures POST /orders/ on both (orders for users of their own, against the
baseline's in-process order insert); `--op propagation` runs the propagation scenario instead
(`make bench` phase 3: PUTs one at a time, PUT returned -> the user's orders updated, on
`--orders` stored orders, default 100 000, 200 PUTs per row) and prints its figures per
round. Otherwise prints the gateway/baseline ratio per measurement (taken within one
round, under the same noise), the p50 and the CPU milliseconds each component spent per
request, then the medians per variant. The original file is put back
at the end, whatever happens. Never fails on a time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.http_matrix import tag
from bench.load import run_wrk
from bench.report import propagation_rounds, total_cpu_ms
from bench.scenarios import propagation
from bench.scenarios.http_users import PUT_USERS, measure, order_owners_file, user_ids_file
from bench.seed import count_orders, seed_orders
from bench.stack import ROOT, BenchStack, http_ok, wait_until
from launch.spec import with_env

SCRIPTS = {"post": "post_users.lua", "put": "put_users.lua", "orders": "post_orders.lua"}
PROPAGATION = "propagation"


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"bench.ab: --env-a/--env-b take KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _restart(
    stack: BenchStack, names: list[str], env: dict[str, str], base: dict, owners: Path | None
) -> None:
    for name in names:
        stack.runner.components[name] = with_env(base[name], env)
        stack.restart(name)
    wait_until(stack.workers_ready, "nameko workers", timeout=90)
    for url in (stack.config.gateway_url, stack.config.baseline_url):
        wait_until(lambda u=url: http_ok(f"{u}/health"), url)
    _warm(stack, owners)


def _warm(stack: BenchStack, owners: Path | None) -> None:
    # A process just started runs its first seconds cold (connection pools, caches): a
    # restarted side measured at once looked up to 30 % slower than it is.
    for url in (stack.config.baseline_url, stack.config.gateway_url):
        run_wrk(url, "post_users.lua", 8, 2, [f"warm{url[-1]}{time.time():.0f}"], "warm-up")
        if owners is not None:
            args = [f"warmo{url[-1]}{time.time():.0f}", str(owners), "2"]
            run_wrk(url, SCRIPTS["orders"], 8, 2, args, "warm-up orders")


def _gateway_run(
    stack: BenchStack, op: str, c: int, name: str, owners: Path | None
) -> tuple[str, list[str]]:
    if op == "post":
        return SCRIPTS[op], [tag(name + "g", c, 0)]
    if op == "orders":
        return SCRIPTS[op], [tag(name + "o", c, 0), str(owners), str(min(2, c))]
    # PUT targets redrawn per run, uniformly over every stored user (as in `make bench`).
    ids = user_ids_file(stack.config, seed=hash((name, c)) % 10**6)
    return SCRIPTS[op], [tag(name + "p", c, 0), str(ids), str(min(2, c))]


def _baseline_run(op: str, c: int, name: str, owners: Path | None) -> tuple[str, list[str]]:
    # The baseline's counterpart: its own order insert for --op orders, else its POST /users.
    if op == "orders":
        return SCRIPTS[op], [tag(name + "q", c, 0), str(owners), str(min(2, c))]
    return SCRIPTS["post"], [tag(name + "b", c, 0)]


def _round(
    stack: BenchStack,
    concurrencies: list[int],
    seconds: int,
    name: str,
    op: str,
    owners: Path | None,
) -> list[dict]:
    config = stack.config
    rows = []
    for c in concurrencies:
        row: dict[str, Any] = {"concurrency": c}
        script, args = _baseline_run(op, c, name, owners)
        row["baseline"] = measure(
            stack, config.baseline_url, script, c, seconds, args, f"{name} c={c} baseline"
        )
        script, args = _gateway_run(stack, op, c, name, owners)
        row["gateway"] = measure(
            stack, config.gateway_url, script, c, seconds, args, f"{name} c={c} gateway {op}"
        )
        row["ratio"] = row["gateway"]["rps"] / max(row["baseline"]["rps"], 1e-9)
        cpu = row["gateway"]["cpu_ms_per_request"]
        print(
            f"  {name} c={c:<3} baseline {_lean(op)} {row['baseline']['rps']:7.1f} req/s  gateway "
            f"{op.upper()} {row['gateway']['rps']:7.1f} req/s p50 {_p50(row['gateway']):.2f} ms"
            f"  ratio {row['ratio']:.2f}  gateway CPU ms/req "
            + " ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items()) if v >= 0.01),
            flush=True,
        )
        rows.append(row)
    return rows


def _lean(op: str) -> str:
    return "ORDERS" if op == "orders" else "POST"


def _p50(measured: dict[str, Any]) -> float:
    return float(measured["latency_ms"]["p50"])


def _seed_put_targets(stack: BenchStack) -> None:
    # PUT needs users spread over the table: created through the baseline (fast).
    url = stack.config.baseline_url
    while _stored_users(stack) < PUT_USERS:
        run_wrk(url, SCRIPTS["post"], 8, 3, [tag("seed", 8, 0)], label="seed PUT targets")


def _stored_users(stack: BenchStack) -> int:
    from pymongo import MongoClient

    with MongoClient(stack.config.mongo_uri) as client:
        return client[stack.config.mongo_db].users.estimated_document_count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--file", action="append", default=[], help="a file under test, relative to the repo"
    )
    parser.add_argument("--a", type=Path, action="append", default=[], help="its version A")
    parser.add_argument("--b", type=Path, action="append", default=[], help="its version B")
    parser.add_argument("--env-a", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--env-b", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--op",
        choices=[*sorted(SCRIPTS), PROPAGATION],
        default="post",
        help="the gateway request measured, or the propagation scenario",
    )
    parser.add_argument(
        "--orders", type=int, default=100_000, help="orders stored for --op propagation"
    )
    parser.add_argument(
        "--restart", nargs="+", required=True, help="components to restart, e.g. edge-v1"
    )
    parser.add_argument("--rounds", type=int, default=2, help="A B B A blocks (default 2)")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args(argv)
    if not len(args.file) == len(args.a) == len(args.b):
        parser.error("each --file needs its --a and --b (and they need --file)")
    if not args.file and not (args.env_a or args.env_b):
        parser.error("nothing to compare: give --file/--a/--b and/or --env-a/--env-b")
    warnings.filterwarnings("ignore")
    targets = [ROOT / name for name in args.file]
    originals = [target.read_bytes() for target in targets]
    variants = {
        "A": [a.read_bytes() for a in args.a],
        "B": [b.read_bytes() for b in args.b],
    }
    envs = {"A": _parse_env(args.env_a), "B": _parse_env(args.env_b)}
    stack = BenchStack(BenchConfig(quick=True))
    results: dict[str, list[dict]] = {"A": [], "B": []}
    try:
        stack.up(progress=lambda m: print(f"  {m}"))
        base = {name: stack.runner.components[name] for name in args.restart}
        if args.op == "put":
            _seed_put_targets(stack)
        owners = order_owners_file(stack.config) if args.op == "orders" else None
        if args.op == PROPAGATION:
            seed_orders(stack.config.mongo_uri, stack.config.mongo_db, args.orders)
        order = "ABBA" * args.rounds
        for i, variant in enumerate(order):
            for target, text in zip(targets, variants[variant], strict=True):
                target.write_bytes(text)
            _restart(stack, args.restart, envs[variant], base, owners)
            if args.op == PROPAGATION:
                print(f"  round {i}{variant}: propagation", flush=True)
                results[variant].append(_propagation_round(stack.config))
                continue
            results[variant] += _round(
                stack, args.concurrency, args.seconds, f"{i}{variant}", args.op, owners
            )
    finally:
        for target, text in zip(targets, originals, strict=True):
            target.write_bytes(text)
        stack.down()
        shutil.rmtree(ROOT / ".run" / "bench" / "mongo", ignore_errors=True)
    if args.op == PROPAGATION:
        print("\n" + "\n".join(propagation_rounds(results)))
        return 0
    print(
        f"\nmedians per variant (ratio = gateway {args.op.upper()} / baseline {_lean(args.op)}"
        " req/s, same round)"
    )
    for variant, rows in results.items():
        for c in args.concurrency:
            mine = [r for r in rows if r["concurrency"] == c]
            ratios = [r["ratio"] for r in mine]
            if not ratios:
                continue
            total = [total_cpu_ms(r["gateway"]) for r in mine]
            base = [total_cpu_ms(r["baseline"]) for r in mine]
            p50s = [_p50(r["gateway"]) for r in mine]
            print(
                f"  {variant} c={c:<3} ratio {statistics.median(ratios):.2f} "
                f"({min(ratios):.2f}-{max(ratios):.2f})  gateway p50 "
                f"{statistics.median(p50s):.2f} ms ({min(p50s):.2f}-{max(p50s):.2f})  "
                f"gateway path CPU ms/req {statistics.median(total):.2f} "
                f"({min(total):.2f}-{max(total):.2f})  CPU ceiling ratio "
                f"{statistics.median(base) / statistics.median(total):.2f}"
            )
            print(f"    CPU ms/req per component: {_per_component(mine)}")
    return 0


def _propagation_round(config: BenchConfig) -> dict:
    stored = count_orders(config.mongo_uri, config.mongo_db)
    # The full scenario's sample count: the quick config's 40 make the p99 a maximum.
    return propagation.run(config, stored, samples=BenchConfig().propagation_samples)


def _per_component(rows: list[dict]) -> str:
    """Median (min-max) of each component's CPU per gateway request over `rows`."""
    names = sorted({k for r in rows for k in r["gateway"]["cpu_ms_per_request"]})
    parts = []
    for name in names:
        values = [r["gateway"]["cpu_ms_per_request"].get(name, 0.0) for r in rows]
        if max(values) >= 0.01:
            parts.append(
                f"{name} {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
            )
    return "  ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
