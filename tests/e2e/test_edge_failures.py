"""Failure paths over real processes: dead workers (504), no workers / broker / Mongo (503)."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.support.auth import api
from tests.support.broker import Vhost, rabbit_port
from tests.support.processes import Edge, Relay, WireServer, Workers, setup_database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

MISSING_ID = "00000000-0000-4000-8000-000000000000"


def assert_problem(response: requests.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith(slug)
    if status == 503:
        assert int(response.headers["Retry-After"]) > 0
    return body


@pytest.fixture
def vhost_uri(private_vhost: Vhost) -> str:
    return private_vhost.uri


@pytest.fixture
def mongo_db(mongo_uri: str) -> str:
    name = f"e2e_fail_{uuid.uuid4().hex[:8]}"
    setup_database(mongo_uri, name)
    return name


@pytest.fixture
def started() -> Iterator[list]:
    """Everything a test starts, stopped at the end whatever happens."""
    processes: list = []
    yield processes
    for process in reversed(processes):
        process.stop() if hasattr(process, "stop") else process.cut()


def test_dead_workers_give_504_then_503_and_recover(
    tmp_path, vhost_uri, mongo_uri, mongo_db, started
):
    workers = Workers(vhost_uri, mongo_uri, mongo_db, tmp_path / "workers.log").start()
    started.append(workers)
    edge = Edge("users_v1", vhost_uri, tmp_path / "edge.log", rpc_timeout=1.0).start()
    started.append(edge)
    edge.wait_ready()
    for _ in range(16):  # every edge thread has called orders: its connection knows it served
        assert api.get(f"{edge.url}/orders/{MISSING_ID}", timeout=10).status_code == 404

    workers.stop(signal.SIGKILL)  # queues stay (durable), nobody consumes them
    began = time.monotonic()
    slugs: list[str] = []
    while slugs[-6:] != ["service-unavailable"] * 6 and len(slugs) < 40:
        response = api.get(f"{edge.url}/orders/{MISSING_ID}", timeout=10)
        assert response.status_code in (503, 504), response.text
        slugs.append(response.json()["type"].rsplit("/", 1)[-1])
    # A connection that saw the service times out once (504; the request expires unrun),
    # then checks again and knows nobody consumes: 503 from then on. 2 x 4 edge threads.
    assert slugs[-6:] == ["service-unavailable"] * 6, slugs
    assert set(slugs) <= {"rpc-timeout", "service-unavailable"}, slugs
    assert slugs.count("rpc-timeout") <= 8, slugs
    assert time.monotonic() - began < 8 * 1.0 + 10
    ready = api.get(f"{edge.url}/ready", timeout=10)
    checks = assert_problem(ready, 503, "not-ready")["checks"]
    assert checks["broker"] == "ok" and checks["orders"].startswith("not running")

    started.append(Workers(vhost_uri, mongo_uri, mongo_db, tmp_path / "workers2.log").start())
    edge.wait_ready()
    assert api.get(f"{edge.url}/orders/{MISSING_ID}", timeout=10).status_code == 404


def test_no_workers_at_all_is_503(tmp_path, vhost_uri, started):
    edge = Edge("users_v2", vhost_uri, tmp_path / "edge.log", rpc_timeout=2.0).start()
    started.append(edge)
    response = api.get(f"{edge.url}/users/{MISSING_ID}", timeout=10)
    assert_problem(response, 503, "service-unavailable")
    assert response.headers["X-Users-Version"] == "v2"
    checks = assert_problem(api.get(f"{edge.url}/ready"), 503, "not-ready")["checks"]
    assert checks["users_v2"].startswith("not running") and checks["broker"] == "ok"


def test_broker_outage_is_503_and_the_edge_recovers(
    tmp_path, private_vhost, mongo_uri, mongo_db, started
):
    workers = Workers(private_vhost.uri, mongo_uri, mongo_db, tmp_path / "workers.log").start()
    started.append(workers)
    relay = Relay(rabbit_port()).start()
    started.append(relay)
    via_relay = f"amqp://guest:guest@127.0.0.1:{relay.port}/{private_vhost.name}"
    edge = Edge("users_v1", via_relay, tmp_path / "edge.log", rpc_timeout=2.0).start()
    started.append(edge)
    edge.wait_ready()
    # Warm every edge thread's connection so the outage hits live, pooled connections.
    for _ in range(20):
        assert api.get(f"{edge.url}/orders/{MISSING_ID}", timeout=10).status_code == 404

    relay.cut()
    for _ in range(5):
        began = time.monotonic()
        response = api.get(f"{edge.url}/orders/{MISSING_ID}", timeout=15)
        assert_problem(response, 503, "broker-unavailable")
        assert time.monotonic() - began < 3  # fails fast, no long publish retries
    checks = assert_problem(api.get(f"{edge.url}/ready"), 503, "not-ready")["checks"]
    assert checks["broker"] == "unreachable"

    restored = Relay(rabbit_port(), port=relay.port).start()
    started.append(restored)
    statuses = [
        api.get(f"{edge.url}/orders/{MISSING_ID}", timeout=15).status_code for _ in range(20)
    ]
    assert statuses == [404] * 20, statuses
    assert api.get(f"{edge.url}/ready", timeout=10).status_code == 200


def test_mongo_outage_is_503(tmp_path, vhost_uri, started):
    wire = WireServer(tmp_path / "nx")
    wire.start()
    started.append(wire)
    setup_database(wire.uri, "e2e_mongo_down")
    workers = Workers(vhost_uri, wire.uri, "e2e_mongo_down", tmp_path / "workers.log")
    workers.start()
    started.append(workers)
    edge = Edge("users_v1", vhost_uri, tmp_path / "edge.log", rpc_timeout=8.0).start()
    started.append(edge)
    edge.wait_ready()

    wire.stop()
    response = api.get(f"{edge.url}/users/{MISSING_ID}", timeout=20)
    assert_problem(response, 503, "storage-unavailable")
    # Default settings: the workers' MONGO_TIMEOUT_MS (3 s) outlasts READY_TIMEOUT (2 s),
    # yet a ping bounds its own database check (1 s), so /ready names the database.
    ready = api.get(f"{edge.url}/ready", timeout=20)
    assert assert_problem(ready, 503, "not-ready")["checks"]["database"] == "unreachable"
