"""Edge RED metrics: counted per generation, Flask route, method, status and consumer."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from common.auth.store import END_USERS
from tests.support.auth import CONSUMER, bearer
from tests.support.edge_fakes import FakeRpc, anonymous_client, build_app
from workers.exceptions import UserNotFound

USER = {"emails": ["a@example.com"], "deliveryAddress": {"city": "X"}}


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.mark.parametrize(("service", "generation"), [("users_v1", "v1"), ("users_v2", "v2")])
def test_requests_are_counted_by_route_not_by_path(registry, service, generation) -> None:
    client = build_app(FakeRpc(), USERS_SERVICE=service, METRICS_REGISTRY=registry).test_client()
    for user_id in ("a", "b", "c"):
        assert client.get(f"/users/{user_id}").status_code == 200
    assert client.post("/users", json=USER).status_code == 201
    assert client.post("/users/", json=USER).status_code == 201

    base = {"generation": generation, "consumer": CONSUMER}
    get = {**base, "route": "/users/<user_id>", "method": "GET", "status": "200"}
    post = {**base, "route": "/users", "method": "POST", "status": "201"}
    assert sample(registry, "edge_requests_total", **get) == 3
    assert sample(registry, "edge_requests_total", **post) == 2
    names = {s.labels.get("route") for m in registry.collect() for s in m.samples}
    assert "/users/a" not in names and "/users/" not in names
    durations = {"generation": generation, "route": "/users/<user_id>", "method": "GET"}
    assert sample(registry, "edge_request_duration_seconds_count", **durations) == 3
    assert sample(registry, "edge_request_duration_seconds_sum", **durations) > 0
    assert sample(registry, "edge_requests_in_flight", generation=generation) == 0


def test_statuses_and_errors(registry) -> None:
    fake = FakeRpc(error=UserNotFound("no such user"))
    client = build_app(fake, METRICS_REGISTRY=registry).test_client()
    assert client.get("/users/x").status_code == 404
    fake.error = RuntimeError("a bug")
    assert client.get("/users/x").status_code == 500
    assert client.get("/nowhere/at/all").status_code == 404
    assert client.delete("/users/x").status_code == 405

    route = {"generation": "v1", "route": "/users/<user_id>", "method": "GET"}
    assert sample(registry, "edge_requests_total", **route, status="404", consumer=CONSUMER) == 1
    assert sample(registry, "edge_requests_total", **route, status="500", consumer=CONSUMER) == 1
    assert sample(registry, "edge_errors_total", **route, status="500") == 1
    assert sample(registry, "edge_errors_total", **route, status="404") == 0
    unmatched = {"generation": "v1", "route": "unmatched"}
    assert sample(registry, "edge_requests_total", **unmatched, method="GET", status="404",
                  consumer="") == 1  # fmt: skip
    # 405: the path matched no rule for DELETE, so it is one "unmatched" series too.
    assert sample(registry, "edge_requests_total", **unmatched, method="DELETE", status="405",
                  consumer=CONSUMER) == 1  # fmt: skip


def test_consumer_label_is_the_authenticated_consumer_never_a_forged_header(registry) -> None:
    app = build_app(FakeRpc(), METRICS_REGISTRY=registry)
    forged = {"X-Consumer-Username": "shop-frontend"}
    app.test_client().get("/users/a", headers=forged)  # the session's `tests` key
    anonymous_client(app).get("/users/a", headers=forged)  # no credential: 401
    app.test_client().get("/users/u1", headers={**forged, **bearer("u1")})

    labels = {"generation": "v1", "route": "/users/<user_id>", "method": "GET"}
    assert sample(registry, "edge_requests_total", **labels, status="200", consumer=CONSUMER) == 1
    assert sample(registry, "edge_requests_total", **labels, status="401", consumer="") == 1
    # One series for every end user, like Kong's issuer consumer: not one per userId.
    assert sample(registry, "edge_requests_total", **labels, status="200", consumer=END_USERS) == 1
    consumers = {s.labels.get("consumer") for m in registry.collect() for s in m.samples}
    assert "shop-frontend" not in consumers and "user:u1" not in consumers


def test_in_flight_counts_a_request_while_it_runs(registry) -> None:
    seen: list[float] = []

    def responder(_call):
        seen.append(sample(registry, "edge_requests_in_flight", generation="v1"))
        return {"id": "a"}

    client = build_app(FakeRpc(responder=responder), METRICS_REGISTRY=registry).test_client()
    client.get("/users/a")
    client.get("/users/b")
    assert seen == [1.0, 1.0]
    assert sample(registry, "edge_requests_in_flight", generation="v1") == 0


def test_the_public_app_serves_no_metrics(registry) -> None:
    client = build_app(FakeRpc(), METRICS_REGISTRY=registry).test_client()
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
