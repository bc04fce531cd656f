"""The HTTP matrix of scenario 1, without any load tool: which runs make up a cell, and the
median-of-rounds summary with each round's ratios (unit-tested; no psutil, wrk or stack).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.config import BenchConfig


def tag(target: str, concurrency: int, round_: int) -> str:
    # Unique per run, so emails never collide with an earlier run's (409s would skew).
    return f"{target[0]}{concurrency}r{round_}t{int(time.time() * 1000) % 10**8}"


# The lean baseline's request a gateway operation is set against: it has no PUT, so a PUT
# is set against its POST /users (as issue 17's targets do); an order against its order.
LEAN_COUNTERPART = {"POST /orders": "POST /orders"}
ORDERS_OP = "POST /orders"


def lean_counterpart(op: str) -> str:
    return LEAN_COUNTERPART.get(op, "POST /users")


def plan(
    config: BenchConfig,
    concurrency: int,
    round_: int,
    ids_file: Path,
    owners_file: Path | None = None,
) -> list[tuple[str, str, str, str, list[str]]]:
    """The runs of one (round, concurrency) cell: lean POST, gateway and peer POST and PUT,
    and with `owners_file` (the users orders are placed for) lean, gateway and peer
    POST /orders at the order concurrencies.

    Odd rounds run the cell in reverse order, so no target always goes first after a
    concurrency change (the rounds then pair up like A B B A).
    """
    c = concurrency
    put_args = [tag("p", c, round_), str(ids_file), str(min(2, c))]
    cell = [
        ("baseline", "POST /users", config.baseline_url, "post_users.lua", [tag("b", c, round_)]),
        ("gateway", "POST /users", config.gateway_url, "post_users.lua", [tag("g", c, round_)]),
        ("gateway", "PUT /users/{id}", config.gateway_url, "put_users.lua", put_args),
    ]  # fmt: skip
    if c in config.peer_concurrencies:
        cell += [
            ("peer", "POST /users", config.peer_url, "post_users.lua", [tag("n", c, round_)]),
            ("peer", "PUT /users/{id}", config.peer_url, "put_users.lua", put_args),
        ]  # fmt: skip
    if owners_file is not None and c in config.orders_concurrencies:
        order_args = [tag("o", c, round_), str(owners_file), str(min(2, c))]
        targets = [("baseline", config.baseline_url), ("gateway", config.gateway_url)]
        if c in config.peer_concurrencies:
            targets.append(("peer", config.peer_url))
        cell += [(t, ORDERS_OP, url, "post_orders.lua", order_args) for t, url in targets]
    return cell[::-1] if round_ % 2 else cell


def _ratios(
    same: list[dict[str, Any]], runs: list[dict[str, Any]], target: str, op: str
) -> list[float]:
    """Each round's req/s of `same` over `target`'s `op` at that round and concurrency."""
    ratios = []
    for r in same:
        other = next(
            (
                b
                for b in runs
                if (b["target"], b["op"]) == (target, op)
                and (b["concurrency"], b["round"]) == (r["concurrency"], r["round"])
            ),
            None,
        )
        if other is not None:
            ratios.append(r["rps"] / other["rps"] if other["rps"] else 0.0)
    return ratios


def _spread(ratios: list[float], prefix: str) -> dict[str, float | None]:
    if not ratios:
        return {}
    return {
        prefix: round(statistics.median(ratios), 3),
        f"{prefix}_min": round(min(ratios), 3),
        f"{prefix}_max": round(max(ratios), 3),
    }


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over rounds per (target, op, concurrency), with each round's ratio to the
    baseline's counterpart measured next to it (`lean_counterpart`: POST /users, or
    POST /orders for an order; `ratio_vs_baseline_post`) and, for the gateway, to the
    peer's same operation, so the spread of a ratio shows the noise."""
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
        ratios = _ratios(same, runs, "baseline", lean_counterpart(op))
        p50 = statistics.median(r["latency_ms"]["p50"] for r in same)
        p99 = statistics.median(r["latency_ms"]["p99"] for r in same)
        row = {
            "target": target,
            "op": op,
            "concurrency": concurrency,
            "rounds": len(same),
            "rps": round(statistics.median(r["rps"] for r in same), 1),
            "rps_min": min(r["rps"] for r in same),
            "rps_max": max(r["rps"] for r in same),
            "p50_ms": round(p50, 2),
            "p95_ms": round(statistics.median(r["latency_ms"]["p95"] for r in same), 2),
            "p99_ms": round(p99, 2),
            "p99_over_p50": round(p99 / p50, 2) if p50 else None,
            "ratio_vs_baseline_post": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_min": round(min(ratios), 3) if ratios else None,
            "ratio_max": round(max(ratios), 3) if ratios else None,
            "errors": sum(sum(r["errors"].values()) for r in same),
            "cpu_ms_per_request": _median_dict([r["cpu_ms_per_request"] for r in same]),
        }
        if target == "gateway":
            row.update(_spread(_ratios(same, runs, "peer", op), "ratio_vs_peer"))
        rows.append(row)
    return rows


def _median_dict(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for d in dicts for k in d}
    return {k: round(statistics.median(d.get(k, 0.0) for d in dicts), 3) for k in sorted(keys)}
