"""Integration fixtures: real RabbitMQ (a vhost per test) and nx-27017 over a socket."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from pymongo import MongoClient

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
