"""`make restart`'s rolling restart (launch.rolling) of the whole running stack — every
worker, both edges, the gateway — under client load through the gateway: not one client
request fails, and every user change still reaches its orders (no event lost)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter

import pytest
import requests

from kong.local_gateway import reload_gateway
from launch import rolling
from launch.spec import SERVICES
from tests.support.audit import assert_invariants
from tests.support.auth import auth_headers
from tests.support.broker import RABBIT_API
from tests.support.data import ADDRESS, ITEMS
from tests.support.polling import wait_until
from tests.support.reliability import RPC_TIMEOUT, create_user_with_orders, stale_orders

pytestmark = pytest.mark.reliability

USERS = 20
CLIENTS = 6
ROUNDS = 2  # two whole rolling restarts, back to back, under the same load
# A reloading nginx closes its idle kept-alive client connections; a request the client
# sent at that instant gets no answer. HTTP lets a client retry an idempotent request then
# (RFC 9110 §9.2.2), as browsers and urllib3's Retry do: GET and PUT are retried once on
# exactly this error (and counted); POSTs go on fresh connections, where it cannot happen
# (a POST with `Connection: close` on the shared session still reused a pooled connection
# and hit it once in a run).
KEEPALIVE_RACE = "Remote end closed connection without response"


def change(tag: str) -> dict:
    return {
        "emails": [f"roll-{tag}-{uuid.uuid4().hex[:8]}@example.com"],
        "deliveryAddress": {**ADDRESS, "street": f"{tag} Rolling St"},
    }


@pytest.mark.timeout(400)
def test_rolling_restart_under_load_fails_no_request_and_loses_no_event(
    stack, vhost, database
) -> None:
    with requests.Session() as http:
        http.headers.update(auth_headers())
        users = [
            create_user_with_orders(http, stack.gateway, orders=1, tag="roll")[0]["userId"]
            for _ in range(USERS)
        ]
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    numbers = itertools.count()

    def send(session: requests.Session, fresh: requests.Session, n: int) -> requests.Response:
        user, timeout = users[n % USERS], RPC_TIMEOUT + 5
        if n % 3 == 0:
            return session.put(
                f"{stack.gateway}/users/{user}", json=change(str(n)), timeout=timeout
            )
        if n % 3 == 1:
            return session.get(f"{stack.gateway}/users/{user}", timeout=timeout)
        order = {"userId": user, "items": ITEMS, "userEmails": [f"o{n}@example.com"],
                 "deliveryAddress": ADDRESS, "orderStatus": "shipping"}  # fmt: skip
        # Not idempotent, so never retried: on a session whose every connection closes after
        # its one request, so it never reuses one (see KEEPALIVE_RACE).
        return fresh.post(
            f"{stack.gateway}/orders/", json=order, timeout=timeout,
            headers={"Connection": "close"},
        )  # fmt: skip

    def client() -> None:
        with requests.Session() as session, requests.Session() as fresh:
            session.headers.update(auth_headers())
            fresh.headers.update(auth_headers())
            while not stop.is_set():
                n = next(numbers)
                kind = ("put", "get", "order")[n % 3]
                for attempt in (1, 2):
                    try:
                        response = send(session, fresh, n)
                        ok = response.status_code < 300
                        detail = f"{kind} {response.status_code} {response.text[:200]}"
                        break
                    except requests.ConnectionError as error:
                        ok, detail = False, f"{kind} {type(error).__name__}: {error}"
                        if kind == "order" or attempt == 2 or KEEPALIVE_RACE not in str(error):
                            break
                        with lock:
                            outcomes["retried"] += 1
                with lock:
                    outcomes[kind if ok else "failed"] += 1
                    if not ok:
                        failures.append(detail)

    broker = rolling.Broker(RABBIT_API, vhost.name, vhost.uri)
    gateway_env = stack.components["gateway"].env
    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    took = []
    try:
        wait_until(lambda: sum(outcomes.values()) >= 30, timeout=60, what="load running")
        for _ in range(ROUNDS):
            before = {name: stack.processes[name].pid for name in SERVICES}
            started = time.monotonic()
            rolling.rolling_restart(
                stack.runner, stack.components, dict(stack.processes), broker,
                lambda: reload_gateway(stack.run_dir, gateway_env),
            )  # fmt: skip
            took.append(time.monotonic() - started)
            after = {name: stack.processes[name].pid for name in SERVICES}
            assert not set(before.values()) & set(after.values()), "every worker replaced"
        during = dict(outcomes)
        time.sleep(1)  # load keeps running on the new instances
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=RPC_TIMEOUT + 10)
    print(f"\nROLLING restarts took {[round(t, 1) for t in took]} s; requests {dict(outcomes)}")
    assert failures == []
    assert during.get("put", 0) >= 20 and during.get("order", 0) >= 10, during
    # No event lost: every order has its user's latest contact (audit = micro-db check).
    wait_until(lambda: not stale_orders(database, users), timeout=60, interval=0.3)
    assert_invariants(database, users)
