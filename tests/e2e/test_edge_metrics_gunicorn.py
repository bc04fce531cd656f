"""Edge metrics under real gunicorn: multiprocess totals, start wipe, dead workers, and
/metrics reachable only on the master's private port, never through the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT
from tests.support.auth import api
from tests.support.gateway import running_gateway
from tests.support.net import free_port
from tests.support.processes import Edge

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

STALE = """
from prometheus_client import Counter
Counter("edge_requests", "", ["route"]).labels("/stale").inc(5)
"""


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def master_pid(edge: Edge) -> int:
    return edge.runner.processes["edge"].pid


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    """A directory holding a previous run's counter, which the start must wipe."""
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", STALE], env=env, check=True, cwd=ROOT)
    assert list(directory.glob("counter_*.db"))
    return directory


@pytest.fixture
def edge(tmp_path: Path, amqp_uri: str, multiproc_dir: Path):
    metrics_port = free_port()
    edge = Edge(
        "users_v2",
        amqp_uri,
        tmp_path / "edge.log",
        extra_env={
            "EDGE_METRICS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        },
    )
    edge.metrics_port = metrics_port  # type: ignore[attr-defined]
    edge.start()
    try:
        yield edge
    finally:
        edge.stop()


def test_totals_across_workers_survive_a_dead_worker(edge, multiproc_dir) -> None:
    port = edge.metrics_port
    with requests.Session() as http:
        for _ in range(40):  # new connections too, so both workers take some
            assert api.get(f"{edge.url}/health", timeout=5).status_code == 200
        for _ in range(7):
            assert http.get(f"{edge.url}/no/such/route", timeout=5).status_code == 404

    samples = scrape(port)
    health = {"generation": "v2", "route": "/health", "method": "GET"}
    assert total(samples, "edge_requests_total", **health, status="200") == 40
    assert total(samples, "edge_requests_total", route="unmatched", status="404") == 7
    assert total(samples, "edge_request_duration_seconds_count", **health) == 40
    assert total(samples, "edge_requests_total", route="/stale") == 0  # wiped at start
    assert total(samples, "edge_requests_in_flight", generation="v2") == 0

    victim = worker_pids(master_pid(edge))[0]
    assert list(multiproc_dir.glob(f"gauge_livesum_{victim}.db"))
    os.kill(victim, signal.SIGKILL)
    # child_exit marks it dead: its live gauge file goes, its counts stay.
    wait_for(lambda: not list(multiproc_dir.glob(f"gauge_livesum_{victim}.db")))
    wait_for(lambda: len(worker_pids(master_pid(edge))) == 2)
    assert api.get(f"{edge.url}/health", timeout=5).status_code == 200
    samples = scrape(port)
    assert total(samples, "edge_requests_total", **health, status="200") == 41


def test_metrics_are_served_neither_publicly_nor_through_the_gateway(edge, tmp_path) -> None:
    assert api.get(f"{edge.url}/health", timeout=5).status_code == 200
    assert (
        "edge_requests_total"
        in requests.get(f"http://127.0.0.1:{edge.metrics_port}/metrics", timeout=5).text
    )
    listening = subprocess.run(
        ["ss", "-Hltn", f"sport = :{edge.metrics_port}"], capture_output=True, text=True
    ).stdout
    local_addresses = [line.split()[3] for line in listening.splitlines()]
    assert local_addresses == [f"127.0.0.1:{edge.metrics_port}"]  # loopback only

    public = requests.get(f"{edge.url}/metrics", timeout=5)
    assert public.status_code == 404
    assert public.headers["Content-Type"] == "application/problem+json"
    assert "edge_requests" not in public.text

    with running_gateway(
        tmp_path / "gw", p_value="100", v1_port=edge.port, v2_port=edge.port
    ) as gateway:
        for path in ("/metrics", "/users/../metrics", "/metrics/"):
            response = api.get(f"{gateway}{path}", timeout=5)
            assert response.status_code == 404, path
            assert response.headers["Content-Type"] == "application/problem+json"
            assert "edge_requests" not in response.text
