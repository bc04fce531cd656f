"""E2E fixtures: real workers (nameko run) and gunicorn edges as subprocesses on free ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.broker import Vhost
from tests.support.processes import Edge, Workers, setup_database


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
