"""Integration fixtures: real RabbitMQ (a vhost per test) and nx-27017 over a socket."""

import uuid
from collections.abc import Iterator

import pytest
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy
from pymongo import MongoClient

from launch.broker_accounts import WORKER_CONFIG
from tests.support.broker import Broker
from workers.db.commands import setup_database
from workers.orders import OrdersService
from workers.users_v1 import UsersV1
from workers.users_v2 import UsersV2


@pytest.fixture
def database(service_config):
    client = MongoClient(service_config["MONGO_URI"])
    yield client[service_config["MONGO_DB"]]
    client.close()


@pytest.fixture
def stack(container_factory, service_config):
    """The three services running in containers against the real broker and wire server."""
    containers = {}
    for service_cls in (UsersV1, UsersV2, OrdersService):
        container = container_factory(service_cls, service_config)
        container.start()
        containers[service_cls.name] = container
    return containers


@pytest.fixture
def rpc(service_config):
    with ClusterRpcProxy(service_config, timeout=20) as proxy:
        yield proxy


# The per-component broker accounts and the workers running on them (module scope: the
# permission and the probe tests share one provisioning per module).
@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("run"))
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def services(broker, wire_server) -> Iterator[dict[str, ServiceContainer]]:
    """The three workers, each on its own account, against their own database."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client = MongoClient(wire_server.uri)
    setup_database(client[name])
    base = {"MONGO_URI": wire_server.uri, "MONGO_DB": name, "MONGO_TIMEOUT_MS": 3000,
            "serializer": "json", **WORKER_CONFIG}  # fmt: skip
    containers = {}
    for service_cls in (UsersV1, UsersV2, OrdersService):
        config = {**base, "AMQP_URI": broker.uris[service_cls.name]}
        containers[service_cls.name] = container = ServiceContainer(service_cls, config)
        container.start()
    yield containers
    for container in containers.values():
        container.stop()
    client.drop_database(name)
    client.close()
