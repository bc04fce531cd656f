"""A database outage longer than 20 delivery attempts under RabbitMQ 4.x's default quorum
delivery limit (20, set here by policy: 3.10 has no default) loses and dead-letters nothing:
the event handler retries in process instead of requeueing (workers/runtime/reliable_events)."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.cluster.load import UpdateLoad, worker_calls
from tests.support.audit import assert_invariants
from tests.support.auth import auth_headers
from tests.support.polling import wait_until
from tests.support.reliability import (
    ORDERS_QUEUES,
    create_user_with_orders,
    record_figure,
    stale_orders,
)
from workers.runtime.reliable_events import RETRY_DELAY_SECONDS

pytestmark = pytest.mark.cluster
DELIVERY_LIMIT = 20  # RabbitMQ 4.x's default for quorum queues
# Fewer than the prefetch window (max_workers 10): every event is in flight all along, so
# each is attempted (with a requeue: delivered) once per round, not once per queue rotation.
EVENTS = 8
ATTEMPTS = 22  # per held event, > DELIVERY_LIMIT (each ~2 s: MONGO_TIMEOUT_MS + the retry delay)


def failed_handler_calls(log_text: str) -> int:
    return sum(worker_calls(log_text, "handle_user_updated*", "StorageUnavailable").values())


@pytest.mark.timeout(300)
def test_a_db_outage_longer_than_20_deliveries_loses_no_event(
    cluster, vhost, stack, cluster_wire, database
) -> None:
    cluster.ctl(
        0, "set_policy", "-p", vhost, "--apply-to", "queues", "delivery-limit-4x", "^evt-",
        json.dumps({"delivery-limit": DELIVERY_LIMIT}),
    )  # fmt: skip

    def applied() -> bool:
        rows = cluster.ctl(0, "list_queues", "-p", vhost, "name", "policy", "--formatter", "json")
        policies = {row["name"]: row["policy"] for row in json.loads(rows)}
        return all(policies.get(q) == "delivery-limit-4x" for q in ORDERS_QUEUES)

    wait_until(applied, timeout=30, interval=0.5, what="the delivery-limit policy applied")
    with requests.Session() as http:
        http.headers.update(auth_headers())
        edge = stack.edge("v2")
        users = [create_user_with_orders(http, edge, tag="dl")[0]["userId"] for _ in range(10)]
    try:
        # Events pile up in the quorum queue while no orders worker consumes it...
        stack.stop("orders", "orders-b")  # the test restarts one, watched, onto the outage
        load = UpdateLoad([stack.edge("v1"), stack.edge("v2")], users, EVENTS, clients=4)
        load.start().join()
        wait_until(
            lambda: database.users.count_documents(
                {"userId": {"$in": users}, "eventPendingSince": {"$exists": True}}
            ) == 0,
            timeout=30, what="every event published",
        )  # fmt: skip
        # ...then the database goes away and the worker comes back to a queue of events.
        cluster_wire.stop()
        outage_started = time.monotonic()
        log_before = stack.components["orders"].log.read_text(errors="replace")
        stack.runner.spawn(stack.components["orders"])
        held = EVENTS  # all within the prefetch window
        orders_log = stack.components["orders"].log

        def attempts_so_far() -> int:
            return failed_handler_calls(orders_log.read_text(errors="replace")[len(log_before) :])

        def dead_lettered() -> int:
            queues = cluster.queues(vhost)
            return sum(queues[f"{q}.dead-letter"]["messages"] for q in ORDERS_QUEUES)

        # Until every event failed ATTEMPTS times, or (the bug) the broker dead-lettered one.
        wait_until(
            lambda: attempts_so_far() >= ATTEMPTS * held or dead_lettered(),
            timeout=150, interval=1, what=f"{ATTEMPTS} attempts of each held event",
        )  # fmt: skip
        attempts = attempts_so_far()
        queues = cluster.queues(vhost)
        dead_during = {q: queues[f"{q}.dead-letter"]["messages"] for q in ORDERS_QUEUES}
    finally:
        outage = time.monotonic() - outage_started if "outage_started" in locals() else 0.0
        cluster_wire.start()
    assert dead_during == {q: 0 for q in ORDERS_QUEUES}  # nothing dead-lettered meanwhile
    stack.runner.wait_ready("orders", timeout=60)
    stack.start("orders-b")
    wait_until(lambda: not stale_orders(database, users), timeout=60, interval=0.2)
    assert_invariants(database, users)
    queues = cluster.queues(vhost)
    cluster.ctl(0, "clear_policy", "-p", vhost, "delivery-limit-4x")
    assert all(queues[f"{q}.dead-letter"]["messages"] == 0 for q in ORDERS_QUEUES), queues
    # Every event acked (the broker's counters lag a few seconds behind).
    wait_until(
        lambda: all(cluster.queues(vhost)[q]["messages"] == 0 for q in ORDERS_QUEUES),
        timeout=30, interval=1, what="the orders queues empty",
    )  # fmt: skip
    assert outage > DELIVERY_LIMIT * RETRY_DELAY_SECONDS
    record_figure(
        "cluster_db_outage_delivery_limit",
        events=EVENTS, delivery_limit=DELIVERY_LIMIT, outage_seconds=round(outage, 1),
        failed_attempts=attempts, held_events=held, dead_lettered=0, stale=0,
    )  # fmt: skip
