"""Scenario 5: user_updated event throughput with 1 vs 2 `orders` worker processes.

K events (one per user, each user owning one order) are published straight to the
users_v1 events exchange as fast as kombu can; the clock stops when the orders queue is
empty or a time window ends (queue depth from a passive declare: no management-API lag).
Rounds go 1, 2, 2, 1 so a drift in the machine's load does not favour either side.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Exchange, Producer
from pymongo import MongoClient
from tqdm import tqdm

from bench.config import BenchConfig
from bench.load import ResourceMonitor
from bench.seed import order_document
from bench.stack import BenchStack

QUEUE = "evt-users_v1-user_updated--orders.handle_user_updated_v1"
EXCHANGE = Exchange("users_v1.events", type="topic", durable=True)


def _queue_state(connection: Connection) -> tuple[int, int]:
    """(ready messages, consumers) of the orders handler queue, from a passive declare."""
    channel = connection.channel()
    try:
        _, messages, consumers = channel.queue_declare(QUEUE, passive=True)
        return messages, consumers
    finally:
        channel.close()


def _wait_consumers(connection: Connection, wanted: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _queue_state(connection)[1] != wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"orders queue did not reach {wanted} consumers")
        time.sleep(0.2)


def _event(user_id: str, version: int) -> dict[str, Any]:
    return {
        "userId": user_id,
        "userEmails": [f"scale-{user_id[:8]}-v{version}@bench.example"],
        "deliveryAddress": {"street": f"{version} Scale St", "city": "Springfield", "state": "CA",
                            "postalCode": "90210", "country": "US"},
        "version": version,
        "updatedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }  # fmt: skip


def _drain(
    connection: Connection, users: list[str], version: int, label: str, window_s: float
) -> dict[str, Any]:
    """Publish one event per user, then count what the workers take off the queue within
    `window_s` (or until it is empty); whatever is left is purged before the next round."""
    producer = Producer(connection.channel(), exchange=EXCHANGE, serializer="json")
    started = time.perf_counter()
    for user_id in users:
        producer.publish(_event(user_id, version), routing_key="user_updated", delivery_mode=2)
    published = time.perf_counter()
    with tqdm(total=len(users), desc=label, unit="evt", ncols=90, leave=False) as bar:
        while True:
            ready, _ = _queue_state(connection)
            elapsed = time.perf_counter() - started
            bar.n = len(users) - ready
            bar.refresh()
            if ready == 0 or elapsed >= window_s:
                break
            time.sleep(0.05)
    if ready:
        channel = connection.channel()
        channel.queue_purge(QUEUE)
        channel.close()
    time.sleep(2.0)  # the few prefetched, in-flight events finish before the next round
    consumed = len(users) - ready  # within the workers' prefetch (10 each) of exact
    return {
        "published": len(users),
        "consumed": consumed,
        "publish_s": round(published - started, 3),
        "seconds": round(elapsed, 3),
        "events_per_s": round(consumed / elapsed, 1),
    }


def run(stack: BenchStack, config: BenchConfig) -> dict[str, Any]:
    users = [str(uuid.uuid4()) for _ in range(config.scale_events)]
    now = datetime.now(UTC)
    with MongoClient(config.mongo_uri) as client:
        orders = client[config.mongo_db].orders
        orders.insert_many([order_document(i, u, "shipping", now) for i, u in enumerate(users)])
    plan = [1, 2] if config.quick else [1, 2, 2, 1]
    rounds = []
    with Connection(config.amqp_uri) as connection:
        for version, workers in enumerate(plan, start=1):
            if workers == 2 and not stack.extra_orders.processes:
                stack.add_orders_worker()
            elif workers == 1 and stack.extra_orders.processes:
                stack.remove_orders_workers()
            _wait_consumers(connection, workers)
            time.sleep(1.0)  # a freshly started worker finishes its start-up work first
            label = f"  {workers} orders worker(s)"
            with ResourceMonitor(stack.process_trees()) as monitor:
                result = _drain(connection, users, version, label, config.scale_window_s)
            # Which component runs out of CPU first says why a second worker helps or not.
            busy = {k: v / result["seconds"] for k, v in monitor.cpu_seconds.items()}
            result["cpu_cores_busy"] = {k: round(v, 2) for k, v in busy.items() if v >= 0.01}
            result["workers"] = workers
            rounds.append(result)
            top = sorted(result["cpu_cores_busy"].items(), key=lambda kv: -kv[1])[:4]
            print(
                f"  {workers} orders worker(s): {result['events_per_s']:7.1f} events/s "
                f"({result['consumed']} events in {result['seconds']} s); cores busy: "
                + ", ".join(f"{k} {v:.2f}" for k, v in top)
            )
        stack.remove_orders_workers()
    by_workers = {
        n: sorted(r["events_per_s"] for r in rounds if r["workers"] == n) for n in (1, 2)
    }
    mean = {n: sum(v) / len(v) for n, v in by_workers.items()}
    return {
        "rounds": rounds,
        "events_per_s_1": round(mean[1], 1),
        "events_per_s_2": round(mean[2], 1),
        "ratio_2_over_1": round(mean[2] / mean[1], 3) if mean[1] else None,
    }
