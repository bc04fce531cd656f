"""The reliability tier's system and helpers: the whole stack from the launch spec on a
private vhost and wire server, a private RabbitMQ node, and what the scenarios share.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from pymongo import MongoClient

from launch import broker_accounts
from launch.runner import Runner
from launch.settings import StackSettings
from launch.spec import RABBIT_BIN, Component, build_stack, rabbitmq_node
from tests.support.data import ADDRESS, ITEMS
from tests.support.net import free_port

# Short enough to keep the tier fast, long enough that a 2-core box under load answers.
RPC_TIMEOUT = 5.0
MONGO_TIMEOUT_MS = 1500
# The reliability tier names the edges as it always did; the spec calls them edge-v1/-v2.
EDGE_NAMES = {"edge_v1": "edge-v1", "edge_v2": "edge-v2"}


class RabbitNode:
    """A RabbitMQ node of our own (own name, ports, mnesia dir, cookie): it can be restarted
    without touching the shared broker on :5672 that every other test run uses."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.name = f"rel-{uuid.uuid4().hex[:8]}@localhost"
        self.component = rabbitmq_node(base, self.name, self.port, free_port())
        self.runner = Runner()

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> float:
        """Boot the node (same mnesia dir every time: durable state survives); return secs."""
        started = time.monotonic()
        self.runner.start(self.component, timeout=timeout)
        return time.monotonic() - started

    def stop(self, timeout: float = 60.0) -> None:
        """Orderly shutdown, as `systemctl restart rabbitmq-server` does (clients see the
        connection close); then make sure the OS process is gone."""
        process = self.runner.processes.get(self.component.name)
        if process is None or process.poll() is not None:
            return
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.name, "stop"],
            env=dict(self.component.env),
            capture_output=True,
            timeout=timeout,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.runner.stop(self.component.name)


class Stack:
    """Workers, edges and gateway as OS processes; any one can be stopped and restarted."""

    def __init__(
        self,
        run_dir: Path,
        amqp_uri: str,
        mongo_uri: str,
        mongo_db: str,
        amqp_uris: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """`amqp_uri` is the vhost's administrator (for the tests' own controls); given
        `amqp_uris` (broker_accounts.provision()), each component runs on its own account.
        `extra_env` reaches every component (settings such as AMQP_HEARTBEAT)."""
        self.run_dir = run_dir
        self.amqp_uri = amqp_uri
        self.mongo_uri = mongo_uri
        self.mongo_db = mongo_db
        ports = {"edge-v1": free_port(), "edge-v2": free_port(), "gateway": free_port()}
        settings = StackSettings.from_env(
            {
                **os.environ,
                "AMQP_URI": amqp_uri,
                "MONGO_URI": mongo_uri,
                "MONGO_DB": mongo_db,
                "MONGO_TIMEOUT_MS": str(MONGO_TIMEOUT_MS),
                "RPC_TIMEOUT": str(RPC_TIMEOUT),
                "RETRY_AFTER": "1",
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
                "GUNICORN_WORKERS": "2",
                "GUNICORN_THREADS": "8",
                "P_VALUE": "50",
                "GATEWAY_PORT": str(ports["gateway"]),
                "EDGE_V1_PORT": str(ports["edge-v1"]),
                "EDGE_V2_PORT": str(ports["edge-v2"]),
                # The fuzz and race tests send bursts from one IP; the limiter is tested in e2e.
                "GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
                **(extra_env or {}),
            }
        )
        # The database is prepared in-process (prepared_database), the wire server is a fixture.
        self.components: dict[str, Component] = {
            component.name: component
            for component in build_stack(
                settings,
                run_dir,
                ports,
                mongo=False,
                amqp_uris=amqp_uris,
                component_env=broker_accounts.component_env(amqp_uris or {}),
            )
            if not component.job
        }
        self.gateway_port = ports["gateway"]
        self.edge_ports = ports
        self.runner = Runner()

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        return self.runner.processes

    def start(self, *names: str, timeout: float = 60.0) -> None:
        self.runner.start(*(self.components[EDGE_NAMES.get(n, n)] for n in names), timeout=timeout)

    def stop(self, *names: str) -> None:
        self.runner.stop(*(EDGE_NAMES.get(name, name) for name in names))

    def stop_all(self) -> None:
        self.runner.stop_all()

    # -- addresses and logs ------------------------------------------------------------
    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def edge(self, generation: str = "v1") -> str:
        return f"http://127.0.0.1:{self.edge_ports[f'edge-{generation}']}"

    @contextlib.contextmanager
    def database(self) -> Iterator[Any]:
        """The stack's database, for tests that read what the services stored."""
        client = MongoClient(self.mongo_uri, serverSelectionTimeoutMS=5000)
        try:
            yield client[self.mongo_db]
        finally:
            client.close()

    def log_text(self, name: str) -> str:
        return self.components[EDGE_NAMES.get(name, name)].log.read_text(errors="replace")


def prepared_database(mongo_uri: str) -> str:
    from workers.db.commands import setup_database

    name = f"rel_{uuid.uuid4().hex[:10]}"
    with MongoClient(mongo_uri) as client:
        setup_database(client[name])
    return name


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
