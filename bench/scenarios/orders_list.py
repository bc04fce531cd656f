"""Scenario 4: GET /orders/?status= first page, through the gateway, at a given store size.

Also times the same query straight on the database, to split service cost from DB cost.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from pymongo import MongoClient

from bench.config import BenchConfig
from bench.load import run_wrk
from bench.seed import count_orders

SECONDS = 5


def _db_query_ms(config: BenchConfig) -> float:
    """The repository's query (workers/orders/repository.py list_by_status), timed directly."""
    timings = []
    with MongoClient(config.mongo_uri) as client:
        orders = client[config.mongo_db].orders
        for _ in range(5):
            started = time.perf_counter()
            list(
                orders.find({"orderStatus": "shipping"}, {"_id": False})
                .sort([("createdAt", 1), ("orderId", 1)])
                .limit(100)
            )
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def run(config: BenchConfig) -> dict[str, Any]:
    stored = count_orders(config.mongo_uri, config.mongo_db)
    rows = {"stored_orders": stored, "db_query_ms": round(_db_query_ms(config), 2)}
    for concurrency in (1, 8):
        result = run_wrk(
            config.gateway_url,
            "get_orders.lua",
            concurrency,
            SECONDS,
            label=f"  list c={concurrency}",
        )
        rows[f"c{concurrency}"] = result.summary()
    lat = rows["c1"]["latency_ms"]
    print(
        f"  {stored} orders stored: first page p50 {lat['p50']} ms p99 {lat['p99']} ms at c=1, "
        f"{rows['c8']['rps']} req/s at c=8 (query alone {rows['db_query_ms']} ms)"
    )
    return rows
