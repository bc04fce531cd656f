"""Cluster tier: the whole system on a real 3-node RabbitMQ cluster this tier starts itself
(tests/support/cluster.py), every component given all three nodes (failover AMQP URIs).

Run alone with `make test-cluster` (pytest -m cluster); CI runs it as part of `make test`.
Needs root (network namespaces) and ~1.3 GB RAM; boots in ~20 s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from launch.spec import SERVICES
from tests.support.cluster import RabbitCluster, starting_at
from tests.support.polling import wait_until
from tests.support.processes import WireServer
from tests.support.reliability import Stack, prepared_database, record_figure

# Instances of each worker (the second is "<service>-b").
WORKER_LOGS = {service: (service, f"{service}-b") for service in SERVICES}
# Seconds between AMQP heartbeats of the workers: a cut-off node is noticed within ~2 of them.
HEARTBEAT = 4


@pytest.fixture(scope="package")
def cluster(tmp_path_factory) -> Iterator[RabbitCluster]:
    cluster = RabbitCluster(tmp_path_factory.mktemp("rabbit-cluster"))
    try:
        record_figure("cluster_boot", seconds=round(cluster.start(), 1), nodes=3)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="package")
def vhost(cluster) -> str:
    name = f"clu-{uuid.uuid4().hex[:8]}"
    cluster.ctl(0, "add_vhost", name)
    return name


@pytest.fixture(scope="package")
def accounts(cluster, vhost, tmp_path_factory) -> dict[str, str]:
    return cluster.provision(vhost, tmp_path_factory.mktemp("cluster-creds"))


@pytest.fixture(scope="package")
def cluster_wire(tmp_path_factory) -> Iterator[WireServer]:
    server = WireServer(tmp_path_factory.mktemp("cluster-nx"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def stack(tmp_path_factory, cluster, vhost, accounts, cluster_wire) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("cluster-stack"),
        cluster.admin_uri(vhost),
        cluster_wire.uri,
        prepared_database(cluster_wire.uri),
        amqp_uris=accounts,
        extra_env={"AMQP_HEARTBEAT": str(HEARTBEAT)},
    )
    # A second instance of each worker, listing the nodes from node 2 on: as in production
    # (several replicas), a request or event the broker takes back from one goes to the other.
    twins = []
    for service in SERVICES:
        first = stack.components[service]
        twin = replace(
            first,
            name=f"{service}-b",
            env=MappingProxyType({**first.env, "AMQP_URI": starting_at(first.env["AMQP_URI"], 1)}),
            log=first.log.with_name(f"{service}-b.log"),
        )
        stack.components[twin.name] = twin
        twins.append(twin.name)
    try:
        stack.start(*SERVICES, *twins)
        wait_until(
            lambda: all(
                cluster.queues(vhost)[f"rpc-{service}"]["consumers"] == 2 for service in SERVICES
            ),
            timeout=60, interval=0.5, what="two consumers on every RPC queue",
        )  # fmt: skip
        stack.start("edge_v1", "edge_v2", "gateway")
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="package")
def database(stack) -> Iterator[Any]:
    with stack.database() as database:
        yield database


@pytest.fixture(autouse=True)
def all_nodes_back(request) -> Iterator[None]:
    """Every scenario starts and ends with three running nodes."""
    yield
    if "cluster" in request.fixturenames:
        cluster = request.getfixturevalue("cluster")
        for node in cluster.nodes:
            cluster.heal(node.index)
            if node.process is None or node.process.poll() is not None:
                cluster.start_node(node.index)
        cluster.wait_running(len(cluster.nodes), timeout=90)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: tests on a real 3-node RabbitMQ cluster")
