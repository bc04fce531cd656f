"""The local Prometheus, started from the launch spec, scrapes a real edge's master: its
target is up and the edge's counters arrive; a component not running is a target down."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from launch import prometheus
from launch.runner import Runner
from tests.support.auth import api
from tests.support.net import free_port
from tests.support.processes import Edge

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.skipif(prometheus.binary() is None, reason="prometheus missing (bootstrap)"),
]


def block_of_free_ports() -> int:
    """A port p with p+1..p+5 free too (the metrics ports sit just above PROMETHEUS_PORT)."""
    for _ in range(50):
        port = free_port()
        if port + 6 < 65536 and all(
            free_port_is(port + offset) for offset in range(1, len(prometheus.OFFSETS) + 1)
        ):
            return port
    raise RuntimeError("no block of free ports")


def free_port_is(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def query(port: int, expr: str) -> dict[str, float]:
    answer = requests.get(
        f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=5
    ).json()
    assert answer["status"] == "success", answer
    return {
        r["metric"].get("component", ""): float(r["value"][1]) for r in answer["data"]["result"]
    }


def test_prometheus_scrapes_the_edge_it_was_configured_for(tmp_path: Path, amqp_uri: str) -> None:
    port = block_of_free_ports()
    metrics_port = prometheus.metrics_ports(port)["edge-v1"]
    edge = Edge(
        "users_v1",
        amqp_uri,
        tmp_path / "edge.log",
        extra_env={"EDGE_METRICS_PORT": str(metrics_port)},
    ).start()
    runner = Runner(new_session=False, stop_timeout=15)
    try:
        runner.start(prometheus.prometheus(tmp_path, port, prometheus.binary()), timeout=60)
        for _ in range(3):
            assert api.get(f"{edge.url}/health", timeout=5).status_code == 200
        deadline = time.monotonic() + 60
        up: dict[str, float] = {}
        while time.monotonic() < deadline:
            up = query(port, 'up{job=~"edge|workers"}')
            health = query(port, 'sum by (component) (edge_requests_total{route="/health"})')
            scraped_all = len(up) == len(prometheus.OFFSETS)  # each target scraped once
            if scraped_all and up.get("edge-v1") == 1 and health.get("edge-v1") == 3:
                break
            time.sleep(1)
        assert up.get("edge-v1") == 1, up
        assert health == {"edge-v1": 3.0}
        # Nothing runs on the other components' ports here: those targets are down.
        assert {name: value for name, value in up.items() if name != "edge-v1"} == {
            "edge-v2": 0.0,
            "users_v1": 0.0,
            "users_v2": 0.0,
            "orders": 0.0,
        }
    finally:
        runner.stop_all()
        edge.stop()
