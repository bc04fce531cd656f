"""Scenario 3: from PUT /users/{id} returning to every order of that user showing the change.

The delay is from the gateway's 200 arriving to the last of the user's orders being written
with the new `userVersion`, read off the `updatedAt` the event handler stores (its
`utcnow()`, millisecond precision, the same clock as this process), and also from the PUT
being sent (end to end: what a user sees whether the PUT waits for its event or not). The
orders are polled by `_id` (the one lookup nx-27017 answers from an index) for their
version and that time, every POLL_SLEEP_S: polling in a tight loop kept nx-27017 — one
serial process — ~85 % busy with the poll's own reads, so the event handler's writes
queued behind them and the bench measured itself.
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC
from typing import Any

import requests
from pymongo import MongoClient
from tqdm import tqdm

from bench.config import BenchConfig
from bench.seed import insert_orders_for
from workers.runtime.documents import as_datetime

ORDERS_PER_USER = (1, 10, 100)
POLL_SLEEP_S = 0.01
GIVE_UP_S = 10.0


def _address(n: int) -> dict[str, str]:
    return {
        "street": f"{n} Moved St",
        "city": "Ogdenville",
        "state": "CA",
        "postalCode": "90002",
        "country": "US",
    }


def _create_user(session: requests.Session, config: BenchConfig) -> dict[str, Any]:
    body = {
        "emails": [f"prop-{uuid.uuid4().hex[:12]}@bench.example"],
        "deliveryAddress": _address(0),
    }
    response = session.post(f"{config.gateway_url}/users/", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(config: BenchConfig, stored_orders: int, samples: int | None = None) -> dict[str, Any]:
    rows = []
    count = samples or config.propagation_samples
    session = requests.Session()
    session.headers.update(config.auth_headers())
    with MongoClient(config.mongo_uri) as client:
        orders = client[config.mongo_db].orders
        for per_user in ORDERS_PER_USER:
            user = _create_user(session, config)
            ids = insert_orders_for(
                config.mongo_uri, config.mongo_db, user["userId"], per_user, user["version"]
            )

            def applied_at(version: int, ids: list[Any] = ids) -> float | None:
                """When the last order was written with `version`; None while one is behind."""
                fields = {"userVersion": True, "updatedAt": True}
                found = list(orders.find({"_id": {"$in": ids}}, fields))
                if not all(o.get("userVersion", 0) >= version for o in found):
                    return None
                last = max(as_datetime(o["updatedAt"]) for o in found)
                return last.replace(tzinfo=UTC).timestamp()

            poll_cost = []
            for _ in range(5):
                started = time.perf_counter()
                applied_at(10**9)
                poll_cost.append((time.perf_counter() - started) * 1000)
            delays, end_to_end, put_ms, lost = [], [], [], 0
            puts = range(1, count + 1)
            label = f"  {per_user:>3} orders/user"
            for n in tqdm(puts, desc=label, ncols=90, leave=False):
                started, sent = time.perf_counter(), time.time()
                response = session.put(
                    f"{config.gateway_url}/users/{user['userId']}",
                    json={"deliveryAddress": _address(n)},
                    timeout=30,
                )
                returned, returned_wall = time.perf_counter(), time.time()
                response.raise_for_status()
                version = response.json()[1]["version"]
                put_ms.append((returned - started) * 1000)
                while (applied := applied_at(version)) is None:
                    if time.perf_counter() - returned > GIVE_UP_S:
                        lost += 1
                        break
                    time.sleep(POLL_SLEEP_S)
                else:
                    delays.append((applied - returned_wall) * 1000)
                    end_to_end.append((applied - sent) * 1000)
                time.sleep(0.05)  # let the worker go idle: one update at a time
            row = {
                "orders_per_user": per_user,
                "stored_orders": stored_orders,
                "samples": len(delays),
                "not_propagated_within_10s": lost,
                "p50_ms": round(statistics.median(delays), 2) if delays else None,
                "p99_ms": round(_percentile(delays, 99), 2) if delays else None,
                "max_ms": round(max(delays), 2) if delays else None,
                "end_to_end_p50_ms": round(statistics.median(end_to_end), 2) if delays else None,
                "end_to_end_p99_ms": round(_percentile(end_to_end, 99), 2) if delays else None,
                "put_p50_ms": round(statistics.median(put_ms), 2),
                "poll_query_ms": round(statistics.median(poll_cost), 2),
            }
            rows.append(row)
            print(
                f"  {per_user:>3} orders/user ({stored_orders} stored): p50 {row['p50_ms']} ms  "
                f"p99 {row['p99_ms']} ms, from the PUT sent p50 {row['end_to_end_p50_ms']} ms"
                f"  (PUT p50 {row['put_p50_ms']} ms, poll query {row['poll_query_ms']} ms)"
            )
    return {"rows": rows}
