"""The system's processes as the tests start them: from the launch spec, with the one runner.

`WireServer` (nx-27017), `Workers` (all three services in one `nameko run`), `Edge` (one
gunicorn edge) and `Relay` (a TCP path to the broker that a test can cut).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from launch.runner import Runner, stop_processes
from launch.spec import (
    EDGE_APP,
    SERVICES,
    Component,
    PortOpen,
    Started,
    child_env,
    db_setup,
    gunicorn_app,
    nameko_worker,
    nx_27017,
)
from tests.support.net import free_port, wait_for_port
from tests.support.polling import wait_until

CHILD_ENV = {"PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}


def foreground_runner() -> Runner:
    """A runner whose processes stay in the test's process group (signals go to the pid)."""
    return Runner(new_session=False, stop_timeout=15)


class WireServer:
    """An nx-27017 process on a free port with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.component = nx_27017(data_dir, self.port, child_env(os.environ))
        self.runner = Runner(new_session=False)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.runner.start(self.component, timeout=30)

    def stop(self) -> None:
        self.runner.stop(self.component.name)


def setup_database(mongo_uri: str, mongo_db: str) -> None:
    """`micro-db setup` as the stack runs it (a subprocess), on one database."""
    env = child_env(os.environ, **CHILD_ENV, MONGO_URI=mongo_uri, MONGO_DB=mongo_db)
    foreground_runner().run_job(db_setup(Path(os.devnull), env))


@dataclass
class Workers:
    """`nameko run` of all three services; its JSON log lines land in `log_path`."""

    amqp_uri: str
    mongo_uri: str
    mongo_db: str
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    runner: Runner = field(default_factory=foreground_runner)

    def component(self) -> Component:
        env = child_env(
            os.environ, **CHILD_ENV, AMQP_URI=self.amqp_uri, MONGO_URI=self.mongo_uri,
            MONGO_DB=self.mongo_db, **self.extra_env,
        )  # fmt: skip
        modules = [f"workers.{service}" for service in SERVICES]
        # No readiness of their own: the edges' /ready (Edge.wait_ready) waits for them.
        return nameko_worker("workers", modules, env, self.log_path, Started())

    def start(self) -> Workers:
        self.runner.start(self.component())
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.runner.stop("workers", sig=sig)

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
    runner: Runner = field(default_factory=foreground_runner)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def component(self) -> Component:
        env = child_env(
            os.environ,
            **CHILD_ENV,
            USERS_SERVICE=self.users_service,
            AMQP_URI=self.amqp_uri,
            RPC_TIMEOUT=str(self.rpc_timeout),
            # extra_env may override these three
            **{"READY_TIMEOUT": "2", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4",
               **self.extra_env},
        )  # fmt: skip
        edge = gunicorn_app("edge", self.port, EDGE_APP, env, self.log_path)
        # Listening is enough here; tests that need the workers call wait_ready().
        return dataclasses.replace(edge, ready=PortOpen("127.0.0.1", self.port))

    def start(self) -> Edge:
        self.runner.start(self.component(), timeout=30)
        return self

    def stop(self) -> None:
        self.runner.stop("edge")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /ready answers 200 (the workers and the broker answer the edge)."""
        last: list[requests.Response] = []

        def ready() -> bool:
            try:
                last[:] = [requests.get(f"{self.url}/ready", timeout=5)]
            except requests.RequestException:
                return False
            return last[0].status_code == 200

        try:
            wait_until(ready, timeout, interval=0.3)
        except AssertionError:
            body = last[0].text if last else "no answer"
            raise RuntimeError(
                f"edge {self.users_service} not ready in {timeout}s: {body}"
            ) from None


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
        if self.process is not None:
            stop_processes([self.process], group=False, sig=signal.SIGKILL)
