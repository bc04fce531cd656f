"""Fault injection on an edge (http_edge/faults.py): off by default, exact when on."""

from __future__ import annotations

import time

import pytest

from http_edge.config import ConfigError
from tests.support.auth import auth_headers
from tests.support.edge_fakes import FakeRpc, build_app


def statuses(app, path: str, count: int) -> list[int]:
    client = app.test_client()
    return [client.get(path, headers=auth_headers()).status_code for _ in range(count)]


def test_off_by_default(monkeypatch):
    monkeypatch.delenv("EDGE_FAULT_ERROR_RATIO", raising=False)
    monkeypatch.delenv("EDGE_FAULT_DELAY_MS", raising=False)
    assert statuses(build_app(FakeRpc()), "/users/u1", 200) == [200] * 200


def test_a_share_of_users_requests_fail_as_a_503_problem():
    app = build_app(FakeRpc(), EDGE_FAULT_ERROR_RATIO="0.3")
    got = statuses(app, "/users/u1", 1000)

    assert set(got) == {200, 503}
    assert 0.25 <= got.count(503) / 1000 <= 0.35
    response = app.test_client().get("/users/u1", headers=auth_headers())
    while response.status_code != 503:
        response = app.test_client().get("/users/u1", headers=auth_headers())
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("fault-injected")


def test_everything_fails_at_ratio_1_and_orders_never():
    app = build_app(FakeRpc(), EDGE_FAULT_ERROR_RATIO="1")

    assert statuses(app, "/users/u1", 20) == [503] * 20
    assert statuses(app, "/orders/o1", 20) == [200] * 20


def test_delay_is_added_to_users_requests_and_counted_by_the_metrics():
    app = build_app(FakeRpc(), EDGE_FAULT_DELAY_MS="150")
    started = time.perf_counter()
    assert statuses(app, "/users/u1", 3) == [200] * 3

    assert time.perf_counter() - started >= 0.45
    histogram = app.extensions["metrics"].duration.collect()[0]
    total = next(s.value for s in histogram.samples if s.name.endswith("_sum"))
    assert total >= 0.45  # the metrics see the delay, so a rollout can judge it


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EDGE_FAULT_ERROR_RATIO", "1.5"),
        ("EDGE_FAULT_ERROR_RATIO", "x"),
        ("EDGE_FAULT_DELAY_MS", "-1"),
    ],
)
def test_bad_values_refuse_to_start(name, value):
    with pytest.raises(ConfigError, match=name):
        build_app(FakeRpc(), **{name: value})
