"""Unit fixtures: real repositories over mongomock, so no server is needed."""

import mongomock
import pytest

from tests.support.edge_fakes import FakeRpc, build_app
from workers.db.commands import INDEXES, index_keys
from workers.orders.repository import OrdersRepository
from workers.users.repository import UsersRepository


@pytest.fixture
def mock_database(monkeypatch):
    # pymongo >= 4.10 passes `sort` to every bulk update; mongomock's builder predates it.
    add_update = mongomock.collection.BulkOperationBuilder.add_update

    def add_update_without_sort(self, *args, sort=None, **kwargs):
        assert sort is None, "mongomock cannot sort a bulk update"
        return add_update(self, *args, **kwargs)

    monkeypatch.setattr(
        mongomock.collection.BulkOperationBuilder, "add_update", add_update_without_sort
    )
    database = mongomock.MongoClient()["unit"]
    # mongomock cannot create collections with validators; the indexes are what matter here.
    for collection, indexes in INDEXES.items():
        for keys, options in indexes:
            database[collection].create_index(index_keys(keys), **options)
    return database


@pytest.fixture
def users_repository(mock_database):
    return UsersRepository(mock_database)


@pytest.fixture
def orders_repository(mock_database):
    return OrdersRepository(mock_database)


@pytest.fixture
def fake() -> FakeRpc:
    """The edge's RPC client, replaced: records calls, answers what a test scripts."""
    return FakeRpc()


@pytest.fixture
def client(fake: FakeRpc):
    """A Flask test client of the edge wired to `fake`."""
    return build_app(fake).test_client()
