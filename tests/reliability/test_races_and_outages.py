"""Races through the gateway, and the database going away under a running system."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from launch.spec import SERVICES
from tests.support.audit import assert_invariants
from tests.support.auth import authenticated_session
from tests.support.broker import publish_raw
from tests.support.data import ADDRESS
from tests.support.polling import wait_until
from tests.support.reliability import (
    RPC_TIMEOUT,
    create_user_with_orders,
    record_figure,
    stale_orders,
)

pytestmark = pytest.mark.reliability
CLIENT_TIMEOUT = RPC_TIMEOUT + 10  # a request that outlives this is a hang


def concurrently(count: int, call) -> list:
    # The root conftest monkey-patched eventlet: these are green threads, really concurrent
    # on the network, each with its own connection.
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


@pytest.mark.timeout(120)
def test_100_concurrent_creates_with_one_email_one_201_and_99_409(stack, database):
    email = f"race-{uuid.uuid4().hex[:10]}@example.com"

    def create(index: int) -> requests.Response:
        with authenticated_session() as session:
            return session.post(
                f"{stack.gateway}/users/",
                json={"emails": [email], "deliveryAddress": ADDRESS},
                headers={"X-Users-Version": "v1" if index % 2 else "v2"},
                timeout=CLIENT_TIMEOUT,
            )

    started = time.monotonic()
    answers = concurrently(100, create)
    statuses = Counter(answer.status_code for answer in answers)
    elapsed = time.monotonic() - started
    assert statuses == Counter({201: 1, 409: 99})
    assert database.users.count_documents({"emails": email}) == 1
    assert_invariants(database, [a.json()["userId"] for a in answers if a.status_code == 201])
    record_figure(
        "race_creates_same_email",
        requests=100,
        statuses=dict(statuses),
        users_stored=1,
        seconds=round(elapsed, 2),
    )


@pytest.mark.timeout(120)
def test_100_concurrent_updates_of_one_user_user_and_orders_agree(stack, database, http):
    user, orders = create_user_with_orders(http, stack.gateway, orders=3)
    user_id = user["userId"]

    def update(index: int) -> int:
        change = {
            "emails": [f"hot-{index}-{uuid.uuid4().hex[:6]}@example.com"],
            "deliveryAddress": {**ADDRESS, "street": f"{index} Race St"},
        }
        with authenticated_session() as session:
            response = session.put(
                f"{stack.gateway}/users/{user_id}", json=change, timeout=CLIENT_TIMEOUT
            )
            return response.status_code

    started = time.monotonic()
    statuses = Counter(concurrently(100, update))
    elapsed = time.monotonic() - started
    assert statuses == Counter({200: 100})
    final = database.users.find_one({"userId": user_id})
    assert final["version"] == 101
    wait_until(lambda: not stale_orders(database, [user_id]), timeout=20)
    assert_invariants(database, [user_id])
    # Every email a losing update claimed and then gave up is released again.
    assert sorted(c["_id"] for c in database.user_emails.find({"userId": user_id})) == [
        final["emails"][0].lower()
    ]
    record_figure(
        "race_updates_one_user",
        requests=100,
        statuses=dict(statuses),
        final_version=final["version"],
        stale_orders=0,
        seconds=round(elapsed, 2),
    )


@pytest.mark.timeout(120)
def test_database_down_answers_503_with_retry_after_and_recovers_without_restarts(
    stack, wire, database, http
):
    user, orders = create_user_with_orders(http, stack.gateway, orders=2)
    other, other_orders = create_user_with_orders(http, stack.gateway, orders=1)
    pids = {name: stack.processes[name].pid for name in SERVICES}
    base = stack.gateway
    probes = [
        ("GET", f"/users/{user['userId']}", None),
        ("PUT", f"/users/{user['userId']}", {"deliveryAddress": {**ADDRESS, "city": "Down"}}),
        ("POST", "/users/", {"emails": ["down@example.com"], "deliveryAddress": ADDRESS}),
        ("GET", f"/orders/{orders[0]['orderId']}", None),
        ("GET", "/orders/?status=shipping", None),
    ]
    seen: list[tuple[str, int, float]] = []

    wire.stop()
    stopped = time.monotonic()
    try:
        for method, path, body in probes:
            started = time.monotonic()
            response = http.request(method, base + path, json=body, timeout=CLIENT_TIMEOUT)
            took = time.monotonic() - started
            seen.append((f"{method} {path.split('/')[1]}", response.status_code, took))
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["status"] == 503
            assert took < RPC_TIMEOUT  # answered, not timed out into a 504
        # An event that arrives while the database is down is kept, not lost.
        publish_raw(stack.amqp_uri, "users_v1", [
            {"userId": other["userId"], "userEmails": ["during-outage@example.com"],
             "deliveryAddress": {**ADDRESS, "street": "Outage St"}, "version": 2,
             "updatedAt": "2026-01-31T12:00:00.000Z"}])  # fmt: skip
        time.sleep(2.0)  # a few requeue cycles of that event
        ready = http.get(f"{stack.edge('v1')}/ready", timeout=CLIENT_TIMEOUT)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "unreachable", ready.json()
    finally:
        outage = time.monotonic() - stopped
        wire.start()
    restarted = time.monotonic()

    def user_served() -> bool:
        response = http.get(f"{base}/users/{user['userId']}", timeout=CLIENT_TIMEOUT)
        return response.status_code == 200

    wait_until(user_served, timeout=30, interval=0.1)
    recovered = time.monotonic() - restarted
    # Writes and events flow again through the very same worker processes.
    response = http.put(
        f"{base}/users/{user['userId']}",
        json={"deliveryAddress": {**ADDRESS, "street": "After Outage St"}},
        timeout=CLIENT_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    wait_until(lambda: not stale_orders(database, [user["userId"]]), timeout=15)
    wait_until(
        lambda: (
            database.orders.find_one({"userId": other["userId"]})["userEmails"]
            == ["during-outage@example.com"]
        ),
        timeout=15,
    )
    events_recovered = time.monotonic() - restarted
    # `other` got a hand-published (forged) v2 event above: only `user` is audited.
    assert_invariants(database, [user["userId"]])
    assert {name: stack.processes[name].pid for name in SERVICES} == pids
    assert all(stack.processes[name].poll() is None for name in SERVICES)
    record_figure(
        "database_down",
        statuses_while_down=sorted({status for _, status, _ in seen}),
        slowest_503_seconds=round(max(took for _, _, took in seen), 2),
        rpc_timeout_seconds=RPC_TIMEOUT,
        outage_seconds=round(outage, 1),
        reads_back_seconds_after_restart=round(recovered, 2),
        events_applied_seconds_after_restart=round(events_recovered, 2),
        worker_restarts=0,
    )
