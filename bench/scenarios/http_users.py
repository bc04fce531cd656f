"""Scenario 1: POST /users/ and PUT /users/{id} through the gateway vs the direct baseline."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.config import RUN_DIR, BenchConfig
from bench.load import ResourceMonitor, run_wrk
from bench.stack import BenchStack

PUT_USERS = 2000  # enough that 64 connections rarely PUT the same user at once


def _tag(target: str, concurrency: int, round_: int) -> str:
    # Unique per run, so emails never collide with an earlier run's (409s would skew).
    return f"{target[0]}{concurrency}r{round_}t{int(time.time() * 1000) % 10**8}"


def _user_ids_file(config: BenchConfig, seed: int) -> Path:
    """PUT targets drawn uniformly from every stored user, redrawn before each PUT run.

    Not the first N: nx-27017 finds a user by scanning in insertion order, so the oldest
    users are the cheapest to update and would flatter PUT.
    """
    with MongoClient(config.mongo_uri) as client:
        ids = [u["userId"] for u in client[config.mongo_db].users.find({}, {"userId": 1})]
    chosen = random.Random(seed).sample(ids, min(PUT_USERS, len(ids)))
    path = RUN_DIR / "put_user_ids.txt"
    path.write_text("\n".join(chosen) + "\n")
    return path


def measure(
    stack: BenchStack,
    url: str,
    script: str,
    concurrency: int,
    seconds: int,
    args: list[str],
    label: str,
) -> dict[str, Any]:
    with ResourceMonitor(stack.process_trees()) as monitor:
        result = run_wrk(url, script, concurrency, seconds, args, label=label)
    n = max(result.requests, 1)
    return {
        **result.summary(),
        "quantiles_ms": [[p, round(ms, 3)] for p, ms in result.quantiles_ms],
        # CPU milliseconds each component spent per request: where the 2 cores go.
        "cpu_ms_per_request": {k: round(v * 1000 / n, 3) for k, v in monitor.cpu_seconds.items()},
        "peak_rss_mb": {k: round(v, 1) for k, v in monitor.peak_rss_mb.items()},
    }


def run(stack: BenchStack, config: BenchConfig) -> dict[str, Any]:
    gateway, baseline = config.gateway_url, config.baseline_url
    seconds = config.http_seconds
    print("  warm-up: 2 s POST on each target (also creates the users PUT will update)")
    for url in (baseline, gateway):
        run_wrk(url, "post_users.lua", 8, 2, [_tag("warm" + url[-1], 8, 0)], label="warm-up")
    # More users to PUT, spread over the table: top up through the baseline (fast).
    run_wrk(baseline, "post_users.lua", 8, 3, [_tag("seed", 8, 0)], label="users for PUT")
    ids_file = RUN_DIR / "put_user_ids.txt"
    runs: list[dict[str, Any]] = []
    for round_ in range(config.http_rounds):
        for concurrency in config.concurrencies:
            # Interleaved: baseline and gateway measured back to back under the same noise.
            c = concurrency
            put_args = [_tag("p", c, round_), str(ids_file), str(min(2, c))]
            plan = [
                ("baseline", "POST /users", baseline, "post_users.lua", [_tag("b", c, round_)]),
                ("gateway", "POST /users", gateway, "post_users.lua", [_tag("g", c, round_)]),
                ("gateway", "PUT /users/{id}", gateway, "put_users.lua", put_args),
            ]  # fmt: skip
            for target, op, url, script, args in plan:
                if script == "put_users.lua":
                    _user_ids_file(config, seed=round_ * 1000 + c)
                label = f"r{round_ + 1} c={concurrency:<2} {target} {op}"
                measured = measure(stack, url, script, concurrency, seconds, args, label)
                runs.append(
                    {
                        "target": target,
                        "op": op,
                        "concurrency": concurrency,
                        "round": round_,
                        **measured,
                    }
                )
                lat = measured["latency_ms"]
                print(
                    f"  {label:42} {measured['rps']:7.1f} req/s  p50 {lat['p50']:6.1f}  "
                    f"p99 {lat['p99']:6.1f} ms  errors {sum(measured['errors'].values())}"
                )
    return {"runs": runs, "summary": summarize(runs)}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over rounds per (target, op, concurrency), with each round's ratio to the
    baseline POST measured next to it, so the spread of the ratio shows the noise."""
    rows = []
    keys = sorted(
        {(r["target"], r["op"], r["concurrency"]) for r in runs}, key=lambda k: (k[2], k[0], k[1])
    )
    for target, op, concurrency in keys:
        same = [
            r
            for r in runs
            if (r["target"], r["op"], r["concurrency"]) == (target, op, concurrency)
        ]
        ratios = []
        for r in same:
            base = next(
                b
                for b in runs
                if b["target"] == "baseline"
                and (b["concurrency"], b["round"]) == (concurrency, r["round"])
            )
            ratios.append(r["rps"] / base["rps"] if base["rps"] else 0.0)
        p50 = statistics.median(r["latency_ms"]["p50"] for r in same)
        p99 = statistics.median(r["latency_ms"]["p99"] for r in same)
        rows.append(
            {
                "target": target,
                "op": op,
                "concurrency": concurrency,
                "rps": round(statistics.median(r["rps"] for r in same), 1),
                "rps_min": min(r["rps"] for r in same),
                "rps_max": max(r["rps"] for r in same),
                "p50_ms": round(p50, 2),
                "p95_ms": round(statistics.median(r["latency_ms"]["p95"] for r in same), 2),
                "p99_ms": round(p99, 2),
                "p99_over_p50": round(p99 / p50, 2) if p50 else None,
                "ratio_vs_baseline_post": round(statistics.median(ratios), 3),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
                "errors": sum(sum(r["errors"].values()) for r in same),
                "cpu_ms_per_request": _median_dict([r["cpu_ms_per_request"] for r in same]),
            }
        )
    return rows


def _median_dict(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for d in dicts for k in d}
    return {k: round(statistics.median(d.get(k, 0.0) for d in dicts), 3) for k in sorted(keys)}
