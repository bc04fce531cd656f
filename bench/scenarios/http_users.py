"""Scenario 1: POST /users/, PUT /users/{id} and POST /orders/ through the gateway vs the
direct baseline (and the Nameko-native peer)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import requests
from pymongo import MongoClient

from bench.config import RUN_DIR, BenchConfig
from bench.http_matrix import plan, summarize, tag
from bench.load import ResourceMonitor, run_wrk
from bench.stack import BenchStack

PUT_USERS = 2000  # enough that 64 connections rarely PUT the same user at once
ORDER_OWNERS = 64  # users POST /orders places orders for; never PUT targets
OWNERS_FILE = RUN_DIR / "order_owner_ids.txt"


def order_owners_file(config: BenchConfig) -> Path:
    """ORDER_OWNERS users of their own (created through the baseline), their ids in a file.

    Kept out of the PUT targets (`user_ids_file`): a PUT of a user holding thousands of
    bench orders would propagate to all of them and measure that instead of the PUT.
    """
    address = {"street": "1 Owner St", "city": "Springfield", "state": "CA",
               "postalCode": "90210", "country": "US"}  # fmt: skip
    stamp = tag("owner", 0, 0)
    ids = []
    with requests.Session() as session:
        for i in range(ORDER_OWNERS):
            body = {"emails": [f"owner-{stamp}-{i}@bench.example"], "deliveryAddress": address}
            response = session.post(f"{config.baseline_url}/users/", json=body, timeout=30)
            response.raise_for_status()
            ids.append(response.json()["userId"])
    OWNERS_FILE.parent.mkdir(parents=True, exist_ok=True)
    OWNERS_FILE.write_text("\n".join(ids) + "\n")
    return OWNERS_FILE


def user_ids_file(config: BenchConfig, seed: int) -> Path:
    """PUT targets drawn uniformly from every stored user, redrawn before each PUT run.

    Not the first N: nx-27017 finds a user by scanning in insertion order, so the oldest
    users are the cheapest to update and would flatter PUT.
    """
    owners = set(OWNERS_FILE.read_text().split()) if OWNERS_FILE.exists() else set()
    with MongoClient(config.mongo_uri) as client:
        users = client[config.mongo_db].users.find({}, {"userId": 1})
        ids = [u["userId"] for u in users if u["userId"] not in owners]
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
    seconds = config.http_seconds
    print("  warm-up: 2 s POST on each target (also creates the users PUT will update)")
    for name, url in (("b", config.baseline_url), ("g", config.gateway_url),
                      ("n", config.peer_url)):  # fmt: skip
        run_wrk(url, "post_users.lua", 8, 2, [tag("warm" + name, 8, 0)], label="warm-up")
    # More users to PUT, spread over the table: top up through the baseline (fast).
    run_wrk(config.baseline_url, "post_users.lua", 8, 3, [tag("seed", 8, 0)], label="seed")
    ids_file = RUN_DIR / "put_user_ids.txt"
    owners_file = order_owners_file(config)
    order_args = [tag("warmo", 8, 0), str(owners_file), "2"]
    for url in (config.baseline_url, config.gateway_url, config.peer_url):
        run_wrk(url, "post_orders.lua", 8, 1, order_args, label="warm-up orders")
    runs: list[dict[str, Any]] = []
    for round_ in range(config.http_rounds):
        for concurrency in config.concurrencies:
            # Interleaved: every target measured back to back under the same noise.
            for target, op, url, script, args in plan(
                config, concurrency, round_, ids_file, owners_file
            ):
                if script == "put_users.lua":
                    user_ids_file(config, seed=round_ * 1000 + concurrency)
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
