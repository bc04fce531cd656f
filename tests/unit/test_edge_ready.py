"""/health is the process; /ready says which of broker, workers and database failed."""

from __future__ import annotations

from nameko.exceptions import RpcTimeout, UnknownService

from http_edge.rpc import BrokerUnavailable
from tests.support.edge_fakes import FakeRpc, build_app
from workers.exceptions import StorageUnavailable


def ready(fake: FakeRpc, **config):
    return build_app(fake, READY_TIMEOUT=0.5, **config).test_client().get("/ready")


def test_health_needs_nothing() -> None:
    client = build_app(FakeRpc(ping_error=BrokerUnavailable("down"))).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_when_every_part_answers() -> None:
    fake = FakeRpc()
    response = ready(fake, USERS_SERVICE="users_v2")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {
        "broker": "ok",
        "users_v2": "ok",
        "orders": "ok",
        "database": "ok",
    }
    assert fake.last.args == ("users_v2", "orders")


def test_broker_down() -> None:
    response = ready(FakeRpc(ping_error=BrokerUnavailable("refused")))
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]
    assert response.get_json()["checks"]["broker"] == "unreachable"


def test_worker_missing_or_silent() -> None:
    fake = FakeRpc(
        ping_results={"users_v1": UnknownService("users_v1"), "orders": RpcTimeout(0.5)}
    )
    response = ready(fake)
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"]["broker"] == "ok"
    assert body["checks"]["users_v1"] == "not running (no queue or no consumer)"
    assert body["checks"]["orders"] == "no answer within 0.5s"
    assert "orders no answer" in body["detail"]


def test_database_down() -> None:
    fake = FakeRpc(ping_results={"orders": StorageUnavailable()})
    body = ready(fake).get_json()
    assert body["status"] == 503
    assert body["checks"]["database"] == "unreachable"
    assert body["checks"]["orders"] == "database unreachable"
    assert body["checks"]["users_v1"] == "ok"
