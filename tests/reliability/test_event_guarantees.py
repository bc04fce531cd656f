"""SPEC §4 under real faults: orders workers down, publishes refused by the broker,
10 000 shuffled duplicated events, poison messages."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import requests

from tests.support.audit import assert_invariants
from tests.support.broker import RABBIT_API, publish_raw, queue_depth
from tests.support.data import ADDRESS
from tests.support.polling import wait_until
from tests.support.reliability import (
    ORDERS_QUEUES,
    RPC_TIMEOUT,
    create_user_with_orders,
    record_figure,
    stale_orders,
)

pytestmark = pytest.mark.reliability


def contact_change(tag: str) -> dict[str, Any]:
    return {
        "emails": [f"{tag}-{uuid.uuid4().hex[:8]}@example.com"],
        "deliveryAddress": {**ADDRESS, "street": f"{tag} Changed St"},
    }


def orders_waiting(stack) -> int:
    return sum(queue_depth(stack.amqp_uri, queue) for queue in ORDERS_QUEUES)


class VersionWatcher(threading.Thread):
    """Samples orders' userVersion while events drain; records any step backwards, which
    would mean an older event overwrote a newer one."""

    def __init__(self, database: Any, user_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.database, self.user_ids = database, user_ids
        self.seen: dict[str, int] = {}
        self.backwards: list[tuple[str, int, int]] = []
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for order in self.database.orders.find(
                {"userId": {"$in": self.user_ids}}, {"orderId": True, "userVersion": True}
            ):
                version = order.get("userVersion", 0)
                previous = self.seen.get(order["orderId"], 0)
                if version < previous:
                    self.backwards.append((order["orderId"], previous, version))
                self.seen[order["orderId"]] = max(previous, version)
            self.samples += 1
            time.sleep(0.02)


@pytest.mark.timeout(150)
def test_orders_down_200_updates_all_applied_in_version_order(stack, database, http):
    users = [create_user_with_orders(http, stack.gateway, orders=2)[0] for _ in range(20)]
    user_ids = [user["userId"] for user in users]
    assert orders_waiting(stack) == 0

    stack.stop("orders")
    statuses: Counter[int] = Counter()
    for index in range(200):
        user_id = user_ids[index % len(user_ids)]
        response = http.put(
            f"{stack.gateway}/users/{user_id}",
            json=contact_change(f"down{index}"),
            timeout=RPC_TIMEOUT + 5,
        )
        statuses[response.status_code] += 1
    assert statuses == Counter({200: 200})
    # Every committed update is now a durable message waiting for the orders service ...
    waiting = wait_until(lambda: orders_waiting(stack) == 200 and 200, timeout=10)
    # ... and no order moved (the test could fail: orders really were down).
    assert len(stale_orders(database, user_ids)) == 40

    watcher = VersionWatcher(database, user_ids)
    watcher.start()
    restarted = time.monotonic()
    stack.start("orders")
    wait_until(lambda: not stale_orders(database, user_ids), timeout=60)
    caught_up = time.monotonic() - restarted
    wait_until(lambda: orders_waiting(stack) == 0, timeout=10)
    time.sleep(0.5)  # a straggling older event must not win after the fact
    watcher.done.set()
    watcher.join(timeout=5)

    assert stale_orders(database, user_ids) == []
    assert watcher.backwards == []
    assert watcher.samples > 3
    versions = {
        u["userId"]: u["version"] for u in database.users.find({"userId": {"$in": user_ids}})
    }
    assert set(versions.values()) == {11}  # 1 + 10 updates each
    assert_invariants(database, user_ids)
    record_figure(
        "orders_down",
        updates=200,
        statuses=dict(statuses),
        queued_while_down=waiting,
        lost=0,
        stale=0,
        version_steps_backwards=len(watcher.backwards),
        catch_up_seconds_incl_worker_start=round(caught_up, 2),
    )


def set_policy(vhost: str, name: str, definition: dict, pattern: str) -> None:
    response = requests.put(
        f"{RABBIT_API}/api/policies/{vhost}/{name}",
        json={
            "pattern": pattern,
            "definition": definition,
            "apply-to": "queues",
            "priority": 10,
        },  # fmt: skip
        timeout=10,
    )
    response.raise_for_status()


def delete_policy(vhost: str, name: str) -> None:
    requests.delete(f"{RABBIT_API}/api/policies/{vhost}/{name}", timeout=10)


@pytest.mark.timeout(90)
def test_committed_update_whose_publish_the_broker_refused_reaches_the_orders(
    stack, vhost, database, http
):
    user, orders = create_user_with_orders(http, stack.gateway, orders=3)
    user_id = user["userId"]
    # Real refusal: the orders queues are full and reject new messages, so the broker
    # answers the users service's confirmed publish with basic.nack. A quorum queue's limit
    # is soft (the message that crosses it is still taken): with the orders worker stopped,
    # one harmless event (a user without orders) fills each queue first.
    pattern = r"^evt-users_v[12]-user_updated--orders\.handle_user_updated_v[12]$"
    stack.stop("orders")
    set_policy(vhost.name, "refuse-events", {"max-length": 0, "overflow": "reject-publish"},
               pattern)  # fmt: skip
    try:
        time.sleep(1.0)  # policies apply asynchronously
        for users in ("users_v1", "users_v2"):
            publish_raw(stack.amqp_uri, users, [
                {"userId": str(uuid.uuid4()), "userEmails": ["filler@example.com"],
                 "deliveryAddress": ADDRESS, "version": 2,
                 "updatedAt": "2026-01-31T12:00:00.000Z"}])  # fmt: skip
        change = contact_change("refused")
        response = http.put(f"{stack.gateway}/users/{user_id}", json=change, timeout=15)
        assert response.status_code == 200, response.text
        stored = database.users.find_one({"userId": user_id})
        assert stored["emails"] == change["emails"]  # the write committed ...
        assert "eventPendingSince" in stored  # ... and is flagged for the relay
        # Held back while the broker keeps refusing (relay attempts are refused too).
        time.sleep(5.0)
        assert len(stale_orders(database, [user_id])) == 3
        assert "eventPendingSince" in database.users.find_one({"userId": user_id})
    finally:
        delete_policy(vhost.name, "refuse-events")
        stack.start("orders")
    lifted = time.monotonic()
    wait_until(lambda: not stale_orders(database, [user_id]), timeout=30)
    delivered_after = time.monotonic() - lifted
    wait_until(
        lambda: "eventPendingSince" not in database.users.find_one({"userId": user_id}),
        timeout=10,
    )
    assert_invariants(database, [user_id])
    logs = stack.log_text("users_v1") + stack.log_text("users_v2")
    assert "not published; left for the relay" in logs
    record_figure(
        "publish_refused",
        injected="queue policy max-length=0 overflow=reject-publish (basic.nack)",
        put_status=response.status_code,
        held_back_seconds=5,
        stale_after=0,
        delivered_seconds_after_broker_accepts=round(delivered_after, 2),
    )


@pytest.mark.timeout(180)
def test_ten_thousand_shuffled_duplicated_events_leave_every_order_at_latest(
    stack, database, http
):
    users = [create_user_with_orders(http, stack.gateway)[0] for _ in range(100)]
    user_ids = [user["userId"] for user in users]
    latest = 81
    unique = [
        {"userId": user_id, "userEmails": [f"v{version}-{user_id[:8]}@example.com"],
         "deliveryAddress": {**ADDRESS, "street": f"{version} Version St"},
         "version": version, "updatedAt": "2026-01-31T12:00:00.000Z"}
        for user_id in user_ids for version in range(2, latest + 1)
    ]  # fmt: skip
    rng = random.Random(5)
    deliveries = unique + rng.choices(unique, k=10_000 - len(unique))  # 2 000 duplicates
    rng.shuffle(deliveries)
    assert len(deliveries) == 10_000

    started = time.monotonic()
    half = len(deliveries) // 2  # both user generations publish user_updated
    publish_raw(stack.amqp_uri, "users_v1", deliveries[:half])
    publish_raw(stack.amqp_uri, "users_v2", deliveries[half:])
    published = time.monotonic() - started

    def converged() -> bool:
        return database.orders.count_documents(
            {"userId": {"$in": user_ids}, "userVersion": latest}
        ) == len(user_ids)

    wait_until(converged, timeout=150, interval=0.2)
    wait_until(lambda: orders_waiting(stack) == 0, timeout=30)
    elapsed = time.monotonic() - started
    stale = 0
    for order in database.orders.find({"userId": {"$in": user_ids}}):
        expected_street = f"{latest} Version St"
        expected_email = f"v{latest}-{order['userId'][:8]}@example.com"
        if order["deliveryAddress"]["street"] != expected_street or order["userEmails"] != [
            expected_email
        ]:
            stale += 1
    assert stale == 0
    record_figure(
        "duplicates_and_reordering",
        events=len(deliveries),
        duplicates=len(deliveries) - len(unique),
        users=len(user_ids),
        stale=stale,
        publish_seconds=round(published, 2),
        applied_all_seconds=round(elapsed, 2),
        events_per_second=round(len(deliveries) / elapsed),
    )


@pytest.mark.timeout(90)
def test_poison_messages_are_dead_lettered_and_later_events_flow(stack, database, http):
    user, orders = create_user_with_orders(http, stack.gateway)
    user_id = user["userId"]
    dead_letter_queue = f"{ORDERS_QUEUES[1]}.dead-letter"
    dead_before = queue_depth(stack.amqp_uri, dead_letter_queue)
    poison: list[tuple[Any, dict[str, Any]]] = [
        ({"userId": user_id, "version": "not a number"}, {}),  # schema violation
        (["not", "an", "object"], {}),  # wrong JSON type
        (b"{this is not json", {"content_type": "application/json",
                                "content_encoding": "utf-8"}),  # undecodable
        (b"\xff\xfe\x00garbage", {"content_type": "application/json",
                                  "content_encoding": "binary"}),  # not UTF-8
    ]  # fmt: skip
    for body, properties in poison:
        publish_raw(stack.amqp_uri, "users_v2", [body], **properties)
    good = {"userId": user_id, "userEmails": ["after-poison@example.com"],
            "deliveryAddress": {**ADDRESS, "street": "Good St"}, "version": 50,
            "updatedAt": "2026-01-31T12:00:00.000Z"}  # fmt: skip
    publish_raw(stack.amqp_uri, "users_v2", [good])

    wait_until(
        lambda: (
            database.orders.find_one({"userId": user_id})["userEmails"]
            == ["after-poison@example.com"]
        ),
        timeout=20,
    )
    dead = wait_until(
        lambda: (
            (n := queue_depth(stack.amqp_uri, dead_letter_queue) - dead_before) >= len(poison)
            and n
        ),
        timeout=10,
    )
    assert dead == len(poison)
    assert stack.processes["orders"].poll() is None  # the worker survived every one
    assert orders_waiting(stack) == 0  # nothing stuck at the head of the queue
    log = stack.log_text("orders")
    assert log.count("rejected to") >= len(poison)
    record_figure(
        "poison_message",
        poison_bodies=len(poison),
        dead_lettered=dead,
        good_event_applied=True,
        worker_alive=True,
    )
