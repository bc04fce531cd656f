"""Rollout test helpers: real edge apps (fake RPC) with their metrics, a bounded load
generator through the gateway, and the env the rollout re-renders the gateway with."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, start_http_server
from werkzeug.serving import make_server

from http_edge import create_app
from tests.support.auth import auth_headers
from tests.support.edge_fakes import FakeRpc
from tests.support.gateway import running_gateway


@dataclass
class AppEdge:
    """The real edge app (routes, metrics, fault injection) with its RPC faked, on a port."""

    version: str
    port: int
    metrics_url: str


@contextlib.contextmanager
def app_edge(version: str, **faults: str) -> Iterator[AppEdge]:
    registry = CollectorRegistry()
    app = create_app(
        {
            "RPC_CLIENT": FakeRpc(),
            "USERS_SERVICE": f"users_{version}",
            "LOG_LEVEL": "WARNING",
            "METRICS_REGISTRY": registry,
            **faults,
        }
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    metrics, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield AppEdge(version, server.port, f"http://127.0.0.1:{metrics.server_port}/metrics")
    finally:
        server.shutdown()
        metrics.shutdown()
        metrics.server_close()


@dataclass
class Gateway:
    url: str
    run_dir: Path
    env: dict[str, str]
    edges: tuple[AppEdge, AppEdge]

    def rollout_args(self) -> list[str]:
        return [
            "--run-dir",
            str(self.run_dir),
            *(a for e in self.edges for a in ("--edge-metrics", e.metrics_url)),
        ]


@contextlib.contextmanager
def gateway_on_app_edges(
    tmp_path: Path, p_value: str, v1_faults: dict | None = None, v2_faults: dict | None = None
) -> Iterator[Gateway]:
    with (
        app_edge("v1", **(v1_faults or {})) as v1,
        app_edge("v2", **(v2_faults or {})) as v2,
        running_gateway(tmp_path, p_value=p_value, v1_port=v1.port, v2_port=v2.port) as url,
    ):
        env = {
            "GATEWAY_PORT": url.rsplit(":", 1)[1],
            "EDGE_V1_PORT": str(v1.port),
            "EDGE_V2_PORT": str(v2.port),
            "GATEWAY_RATE_LIMIT_PER_SECOND": "100000",  # as running_gateway()
            "GATEWAY_CLIENT_TIMEOUT": "60.0",
        }
        yield Gateway(url, tmp_path, env, (v1, v2))


def is_injected(response: requests.Response) -> bool:
    """A 503 the fault injection answered (the drill's own failures, not the gateway's)."""
    return (
        response.status_code == 503
        and response.headers.get("Content-Type", "").startswith("application/problem+json")
        and response.json()["type"].endswith("fault-injected")
    )


@dataclass
class Load:
    """Bounded load: `threads` clients, each GET /users/u<random of `users`> in a loop."""

    url: str
    threads: int = 4
    users: int = 400
    pause: float = 0.0
    versions: Counter = field(default_factory=Counter)
    injected: int = 0
    retried: int = 0  # idempotent requests resent once after an idle keep-alive close
    failures: list[str] = field(default_factory=list)  # anything else but a 200
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, seed: int) -> None:
        draw = random.Random(seed).randrange
        with requests.Session() as http:
            while not self._stop.is_set():
                path = f"/users/u{draw(self.users)}"
                try:
                    response = self._get(http, path)
                except requests.RequestException as error:
                    with self._lock:
                        self.failures.append(f"{path}: {error!r}")
                    continue
                with self._lock:
                    if response.status_code == 200:
                        self.versions[response.headers.get("X-Users-Version")] += 1
                    elif is_injected(response):
                        self.injected += 1
                    else:
                        self.failures.append(f"{path}: {response.status_code} {response.text}")
                if self.pause:
                    time.sleep(self.pause)

    def _get(self, http: requests.Session, path: str) -> requests.Response:
        try:
            return http.get(self.url + path, headers=auth_headers(), timeout=10)
        except requests.ConnectionError as error:
            # nginx closes idle keep-alive connections when a reload retires its old workers;
            # a request racing that close is retried once, as RFC 9112 §9.3.1 lets a client
            # do for an idempotent request. Counted, so the number is reported, not hidden.
            if "RemoteDisconnected" not in str(error) and "reset by peer" not in str(error):
                raise
            with self._lock:
                self.retried += 1
            return http.get(self.url + path, headers=auth_headers(), timeout=10)

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        workers = [
            threading.Thread(target=self._client, args=(seed,), daemon=True)
            for seed in range(self.threads)
        ]
        for worker in workers:
            worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            for worker in workers:
                worker.join(timeout=15)


def versions_of_users(url: str, users: range, repeat: int = 1) -> dict[str, Counter]:
    """Which generation answered each user's requests (`repeat` requests per user)."""
    seen: dict[str, Counter] = {}
    with requests.Session() as http:
        for index in users:
            user = f"u{index}"
            for _ in range(repeat):
                response = http.get(f"{url}/users/{user}", headers=auth_headers(), timeout=10)
                assert response.status_code == 200, response.text
                seen.setdefault(user, Counter())[response.headers["X-Users-Version"]] += 1
    return seen
