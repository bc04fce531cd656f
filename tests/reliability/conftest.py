"""Reliability tier: the real processes (nameko run, gunicorn edges, nginx gateway) on a
private vhost, a private Mongo wire server and, for the restart test, a private RabbitMQ node.

Every fault here is injected for real (processes stopped, a broker node restarted, a broker
policy that refuses publishes), never by editing documents behind the services' back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kombu import Connection
from pymongo import MongoClient

from kong.local_gateway import prepare_gateway
from tests.conftest import ROOT, Vhost, WireServer, free_port

BIN = Path(sys.executable).parent
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
SERVICES = ("users_v1", "users_v2", "orders")
# Short enough to keep the tier fast, long enough that a 2-core box under load answers.
RPC_TIMEOUT = 5.0
MONGO_TIMEOUT_MS = 1500
ADDRESS = {"street": "1 Main St", "city": "Springfield", "state": "CA", "postalCode": "90210",
           "country": "US"}  # fmt: skip
ITEMS = [{"itemId": "sku-1", "quantity": 1, "price": 3.0}]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; bounded, raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def stop_process(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group we started (start_new_session), SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class RabbitNode:
    """A RabbitMQ node of our own (own name, ports, mnesia dir, cookie): it can be restarted
    without touching the shared broker on :5672 that every other test run uses."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.dist_port = free_port()
        self.name = f"rel-{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen | None = None
        base.mkdir(parents=True, exist_ok=True)
        # Our own config: the system one binds 5672 and enables management on 15672.
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (base / "enabled_plugins").write_text("[].\n")

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.base),  # the node and rabbitmqctl share a cookie created here
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",  # not /etc/rabbitmq/rabbitmq-env.conf
        }

    def start(self, timeout: float = 60.0) -> float:
        """Boot the node (same mnesia dir every time: durable state survives); return secs."""
        started = time.monotonic()
        log = open(self.base / "server.out", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited; see {self.base / 'server.out'}")
            with contextlib.suppress(Exception), Connection(self.uri, connect_timeout=1) as conn:
                conn.connect()
                return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"RabbitMQ node {self.name} did not boot within {timeout}s")

    def stop(self, timeout: float = 60.0) -> None:
        """Orderly shutdown, as `systemctl restart rabbitmq-server` does (clients see the
        connection close); then make sure the OS process is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.name, "stop"],
            env=self.env(),
            capture_output=True,
            timeout=timeout,
        )
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.process)

    def kill(self) -> None:
        stop_process(self.process)


class Stack:
    """Workers, edges and gateway as OS processes; any one can be stopped and restarted."""

    def __init__(self, run_dir: Path, amqp_uri: str, mongo_uri: str, mongo_db: str) -> None:
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.amqp_uri = amqp_uri
        self.mongo_uri = mongo_uri
        self.mongo_db = mongo_db
        self.ports = {"edge_v1": free_port(), "edge_v2": free_port(), "gateway": free_port()}
        self.processes: dict[str, subprocess.Popen] = {}

    # -- environment -------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "AMQP_URI": self.amqp_uri,
            "MONGO_URI": self.mongo_uri,
            "MONGO_DB": self.mongo_db,
            "MONGO_TIMEOUT_MS": str(MONGO_TIMEOUT_MS),
            "RPC_TIMEOUT": str(RPC_TIMEOUT),
            "RETRY_AFTER": "1",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
            "PYTHONPATH": str(ROOT),
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "8",
            "P_VALUE": "50",
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "EDGE_V1_PORT": str(self.ports["edge_v1"]),
            "EDGE_V2_PORT": str(self.ports["edge_v2"]),
            # The fuzz and race tests send bursts from one IP; the limiter is tested in e2e.
            "GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
        }
        env.update(extra)
        return env

    def argv(self, name: str) -> tuple[list[str], dict[str, str]]:
        if name in SERVICES:
            config = str(ROOT / "config.yaml")
            return [str(BIN / "nameko"), "run", "--config", config, f"workers.{name}"], self.env()
        if name.startswith("edge_"):
            generation = name.split("_", 1)[1]
            env = self.env(USERS_SERVICE=f"users_{generation}")
            bind = f"127.0.0.1:{self.ports[name]}"
            conf = str(ROOT / "http_edge" / "gunicorn_conf.py")
            return [str(BIN / "gunicorn"), "-c", conf, "--bind", bind,
                    "http_edge.app:create_app()"], env  # fmt: skip
        if name == "gateway":
            return prepare_gateway(self.run_dir, self.env()), self.env()
        raise ValueError(name)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, *names: str, timeout: float = 60.0) -> None:
        for name in names:
            argv, env = self.argv(name)
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            self.processes[name] = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        for name in names:
            self.wait_ready(name, timeout)

    def stop(self, *names: str) -> None:
        for name in names:
            stop_process(self.processes.pop(name, None))

    def stop_all(self) -> None:
        self.stop(*reversed(list(self.processes)))

    def wait_ready(self, name: str, timeout: float) -> None:
        process = self.processes[name]

        def ready() -> bool:
            if process.poll() is not None:
                log = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")
            if name in SERVICES:
                return self.ping(name)
            port = self.ports[name]
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok
            return False

        wait_until(ready, timeout, interval=0.2)

    def ping(self, service: str) -> bool:
        from nameko.standalone.rpc import ClusterRpcProxy

        try:
            with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=2) as rpc:
                getattr(rpc, service).ping()
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    # -- addresses and logs ------------------------------------------------------------
    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def edge(self, generation: str = "v1") -> str:
        return f"http://127.0.0.1:{self.ports[f'edge_{generation}']}"

    def log_text(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def nameko_config(self) -> dict[str, Any]:
        return {"AMQP_URI": self.amqp_uri, "serializer": "json"}


# ---------------------------------------------------------------------------------------
# HTTP helpers shared by the scenarios
# ---------------------------------------------------------------------------------------
def create_user_with_orders(
    http: requests.Session, base: str, orders: int = 1, tag: str = "rel"
) -> tuple[dict, list[dict]]:
    email = f"{tag}-{uuid.uuid4().hex[:12]}@example.com"
    response = http.post(
        f"{base}/users/", json={"emails": [email], "deliveryAddress": ADDRESS}, timeout=30
    )
    assert response.status_code == 201, response.text
    user = response.json()
    created = []
    for _ in range(orders):
        body = {"userId": user["userId"], "items": ITEMS, "userEmails": user["emails"],
                "deliveryAddress": ADDRESS, "orderStatus": "shipping"}  # fmt: skip
        response = http.post(f"{base}/orders/", json=body, timeout=30)
        assert response.status_code == 201, response.text
        created.append(response.json())
    return user, created


def stale_orders(database: Any, user_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Orders whose emails/address differ from their user's stored (latest) document."""
    query = {"userId": {"$in": user_ids}} if user_ids is not None else {}
    users = {u["userId"]: u for u in database.users.find(query, {"_id": False})}
    stale = []
    for order in database.orders.find(
        {"userId": {"$in": list(users)}},
        {
            "_id": False,
            "orderId": True,
            "userId": True,
            "userEmails": True,
            "deliveryAddress": True,
            "userVersion": True,
        },  # fmt: skip
    ):
        user = users[order["userId"]]
        if (
            order["userEmails"] != user["emails"]
            or order["deliveryAddress"] != user["deliveryAddress"]
            or order.get("userVersion") != user["version"]
        ):
            stale.append({**order, "userLatestVersion": user["version"]})
    return stale


def queue_depth(amqp_uri: str, queue: str) -> int:
    """Ready messages in a queue, by a passive declare (no management API needed)."""
    with Connection(amqp_uri) as connection:
        _, count, _ = connection.default_channel.queue_declare(queue=queue, passive=True)
        return count


ORDERS_QUEUES = tuple(
    f"evt-{users}-user_updated--orders.handle_user_updated_{users[-2:]}"
    for users in ("users_v1", "users_v2")
)


def record_figure(name: str, **figures: Any) -> None:
    """Append the measured figures of a scenario to a JSON-lines file (docs/reliability.md
    is written from these) and print them, so every CI run shows its numbers."""
    line = json.dumps({"scenario": name, **figures}, sort_keys=True)
    print(f"\nRELIABILITY {line}")
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def wire(tmp_path_factory) -> Iterator[WireServer]:
    """A private nx-27017: the database-down test stops and restarts it."""
    server = WireServer(tmp_path_factory.mktemp("rel-nx"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def vhost() -> Iterator[Vhost]:
    vhost = Vhost()
    vhost.create()
    yield vhost
    vhost.delete()


def prepared_database(mongo_uri: str) -> str:
    from workers.db_commands import setup_database

    name = f"rel_{uuid.uuid4().hex[:10]}"
    with MongoClient(mongo_uri) as client:
        setup_database(client[name])
    return name


@pytest.fixture(scope="package")
def stack(tmp_path_factory, vhost, wire) -> Iterator[Stack]:
    """The whole system on the shared broker (private vhost) and a private wire server."""
    stack = Stack(
        tmp_path_factory.mktemp("rel-stack"), vhost.uri, wire.uri, prepared_database(wire.uri)
    )
    try:
        stack.start(*SERVICES)
        stack.start("edge_v1", "edge_v2", "gateway")
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="package")
def database(stack) -> Iterator[Any]:
    client = MongoClient(stack.mongo_uri, serverSelectionTimeoutMS=5000)
    yield client[stack.mongo_db]
    client.close()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml (not this tier's file) runs --strict-markers.
    config.addinivalue_line("markers", "reliability: fault-injection tests on real processes")
