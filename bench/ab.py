"""`python -m bench.ab`: A/B two versions of one source file on the bench stack.

    .venv/bin/python -m bench.ab --file http_edge/rpc.py --a old_rpc.py --b new_rpc.py \\
        --restart edge-v1 [--rounds 2] [--seconds 5] [--concurrency 8 32]

Brings up the isolated bench stack once, then for each round in the order A B B A (so slow
drift of the shared machine hits both sides alike) installs that version of `--file`,
restarts only the `--restart` components, and measures the baseline and the gateway
`POST /users/` back to back at each concurrency. Prints the gateway/baseline ratio per
measurement (taken within one round, under the same noise) and the CPU milliseconds each
component spent per request, then the medians per variant. The original file is put back
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
from bench.load import run_wrk
from bench.report import total_cpu_ms
from bench.scenarios.http_users import measure
from bench.stack import ROOT, BenchStack, http_ok, wait_until


def _restart(stack: BenchStack, names: list[str]) -> None:
    for name in names:
        stack.restart(name)
    wait_until(stack.workers_ready, "nameko workers", timeout=90)
    for url in (stack.config.gateway_url, stack.config.baseline_url):
        wait_until(lambda u=url: http_ok(f"{u}/health"), url)
    _warm(stack)


def _warm(stack: BenchStack) -> None:
    # A process just started runs its first seconds cold (connection pools, caches): a
    # restarted side measured at once looked up to 30 % slower than it is.
    for url in (stack.config.baseline_url, stack.config.gateway_url):
        run_wrk(url, "post_users.lua", 8, 2, [f"warm{url[-1]}{time.time():.0f}"], "warm-up")


def _round(stack: BenchStack, concurrencies: list[int], seconds: int, tag: str) -> list[dict]:
    config = stack.config
    rows = []
    for c in concurrencies:
        row: dict[str, Any] = {"concurrency": c}
        for target, url in (("baseline", config.baseline_url), ("gateway", config.gateway_url)):
            label = f"{tag} c={c} {target}"
            tags = [f"{tag}{target[0]}{c}"]
            row[target] = measure(stack, url, "post_users.lua", c, seconds, tags, label)
        row["ratio"] = row["gateway"]["rps"] / max(row["baseline"]["rps"], 1e-9)
        cpu = row["gateway"]["cpu_ms_per_request"]
        print(
            f"  {tag} c={c:<3} baseline {row['baseline']['rps']:7.1f} req/s  gateway "
            f"{row['gateway']['rps']:7.1f} req/s  ratio {row['ratio']:.2f}  gateway CPU ms/req "
            + " ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items()) if v >= 0.01),
            flush=True,
        )
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("--file", required=True, help="the file under test, relative to the repo")
    parser.add_argument("--a", required=True, type=Path, help="version A of --file")
    parser.add_argument("--b", required=True, type=Path, help="version B of --file")
    parser.add_argument(
        "--restart", nargs="+", required=True, help="components to restart, e.g. edge-v1"
    )
    parser.add_argument("--rounds", type=int, default=2, help="A B B A blocks (default 2)")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    target = ROOT / args.file
    original = target.read_bytes()
    variants = {"A": args.a.read_bytes(), "B": args.b.read_bytes()}
    stack = BenchStack(BenchConfig(quick=True))
    results: dict[str, list[dict]] = {"A": [], "B": []}
    try:
        stack.up(progress=lambda m: print(f"  {m}"))
        order = "ABBA" * args.rounds
        for i, variant in enumerate(order):
            target.write_bytes(variants[variant])
            _restart(stack, args.restart)
            results[variant] += _round(stack, args.concurrency, args.seconds, f"{i}{variant}")
    finally:
        target.write_bytes(original)
        stack.down()
        shutil.rmtree(ROOT / ".run" / "bench" / "mongo", ignore_errors=True)
    print("\nmedians per variant (ratio = gateway / baseline POST req/s, same round)")
    for variant, rows in results.items():
        for c in args.concurrency:
            mine = [r for r in rows if r["concurrency"] == c]
            ratios = [r["ratio"] for r in mine]
            if not ratios:
                continue
            total = [total_cpu_ms(r["gateway"]) for r in mine]
            base = [total_cpu_ms(r["baseline"]) for r in mine]
            print(
                f"  {variant} c={c:<3} ratio {statistics.median(ratios):.2f} "
                f"({min(ratios):.2f}-{max(ratios):.2f})  gateway path CPU ms/req "
                f"{statistics.median(total):.2f}  CPU ceiling ratio "
                f"{statistics.median(base) / statistics.median(total):.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
