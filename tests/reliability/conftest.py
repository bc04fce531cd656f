"""Reliability tier: the real processes (nameko run, gunicorn edges, nginx gateway) on a
private vhost, a private Mongo wire server and, for the restart test, a private RabbitMQ node.

Every fault here is injected for real (processes stopped, a broker node restarted, a broker
policy that refuses publishes), never by editing documents behind the services' back.
The system and the helpers the scenarios share are in tests/support/reliability.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from launch import broker_accounts
from launch.spec import SERVICES
from tests.support.auth import authenticated_session
from tests.support.broker import RABBIT_API, Vhost
from tests.support.processes import WireServer
from tests.support.reliability import Stack, prepared_database


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


@pytest.fixture(scope="package")
def accounts(vhost, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Each component's own least-privilege RabbitMQ account on the tier's vhost (the tests'
    own controls, such as publishing raw events, use the vhost's administrator)."""
    uris = broker_accounts.provision(RABBIT_API, vhost.name, tmp_path_factory.mktemp("creds"))
    yield uris
    broker_accounts.deprovision(RABBIT_API, vhost.name)


@pytest.fixture(scope="package")
def stack(tmp_path_factory, vhost, accounts, wire) -> Iterator[Stack]:
    """The whole system on the shared broker (private vhost, one account per component) and
    a private wire server."""
    stack = Stack(
        tmp_path_factory.mktemp("rel-stack"),
        vhost.uri,
        wire.uri,
        prepared_database(wire.uri),
        amqp_uris=accounts,
    )
    try:
        stack.start(*SERVICES)
        stack.start("edge_v1", "edge_v2", "gateway")
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="package")
def database(stack) -> Iterator[Any]:
    with stack.database() as database:
        yield database


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with authenticated_session() as session:
        yield session


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml (not this tier's file) runs --strict-markers.
    config.addinivalue_line("markers", "reliability: fault-injection tests on real processes")
