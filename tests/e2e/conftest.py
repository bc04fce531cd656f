"""E2E fixtures: real workers (nameko run) and gunicorn edges as subprocesses on free ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, Vhost, free_port, wait_for_port

BIN = Path(sys.executable).parent
CHILD_ENV = {"PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}

# A TCP relay we can cut and restore, standing in for "the broker went away and came back"
# (the real broker is shared, so tests never stop it).
RELAY = r"""
import socket, sys, threading
listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
server = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
while True:
    client, _ = server.accept()
    upstream = socket.create_connection(("127.0.0.1", target_port))
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
"""


def _stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def setup_database(mongo_uri: str, mongo_db: str) -> None:
    env = {**os.environ, **CHILD_ENV, "MONGO_URI": mongo_uri, "MONGO_DB": mongo_db}
    subprocess.run(
        [sys.executable, "-m", "workers.db_commands", "setup"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


@dataclass
class Workers:
    """`nameko run` of all three services; its JSON log lines land in `log_path`."""

    amqp_uri: str
    mongo_uri: str
    mongo_db: str
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> Workers:
        env = {
            **os.environ,
            **CHILD_ENV,
            "AMQP_URI": self.amqp_uri,
            "MONGO_URI": self.mongo_uri,
            "MONGO_DB": self.mongo_db,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                str(BIN / "nameko"),
                "run",
                "--config",
                "config.yaml",
                "workers.users_v1",
                "workers.users_v2",
                "workers.orders",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.process, sig)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Edge:
    """One gunicorn edge process serving one users generation."""

    users_service: str
    amqp_uri: str
    log_path: Path
    rpc_timeout: float = 5.0
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Edge:
        env = {
            **os.environ,
            **CHILD_ENV,
            "EDGE_BIND": f"127.0.0.1:{self.port}",
            "USERS_SERVICE": self.users_service,
            "AMQP_URI": self.amqp_uri,
            "RPC_TIMEOUT": str(self.rpc_timeout),
            "READY_TIMEOUT": "2",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            **self.extra_env,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "http_edge/gunicorn_conf.py",
                "http_edge.wsgi:app",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_for_port(self.port, timeout=30)
        return self

    def stop(self) -> None:
        _stop(self.process)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                last = requests.get(f"{self.url}/ready", timeout=5)
                if last.status_code == 200:
                    return
            time.sleep(0.3)
        body = last.text if last is not None else "no answer"
        raise RuntimeError(f"edge {self.users_service} not ready in {timeout}s: {body}")


@dataclass
class Relay:
    """A cuttable TCP path to the broker (see RELAY)."""

    target_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Relay:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RELAY, str(self.port), str(self.target_port)],
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=10)
        return self

    def cut(self) -> None:
        _stop(self.process, signal.SIGKILL)


@dataclass
class Stack:
    workers: Workers
    v1: Edge
    v2: Edge

    def edge(self, version: str) -> Edge:
        return self.v1 if version == "v1" else self.v2


@pytest.fixture(scope="session")
def edge_stack(amqp_uri: str, mongo_uri: str, tmp_path_factory) -> Iterator[Stack]:
    """Workers + one edge per users generation on a private vhost and database."""
    logs = tmp_path_factory.mktemp("edge-stack")
    mongo_db = f"e2e_{uuid.uuid4().hex[:10]}"
    setup_database(mongo_uri, mongo_db)
    workers = Workers(amqp_uri, mongo_uri, mongo_db, logs / "workers.log").start()
    v1 = Edge("users_v1", amqp_uri, logs / "edge-v1.log")
    v2 = Edge("users_v2", amqp_uri, logs / "edge-v2.log")
    try:
        v1.start()
        v2.start()
        v1.wait_ready()
        v2.wait_ready()
        yield Stack(workers, v1, v2)
    finally:
        v1.stop()
        v2.stop()
        workers.stop()


@pytest.fixture
def private_vhost() -> Iterator[Vhost]:
    """A vhost for tests that break things (stop workers, cut the broker)."""
    vhost = Vhost()
    vhost.create()
    yield vhost
    vhost.delete()


def rabbit_port() -> int:
    return int(os.environ.get("RABBIT_HOST", "127.0.0.1:5672").rsplit(":", 1)[1])
