"""Root fixtures: eventlet first, then a private Mongo wire server and a private vhost."""

import eventlet

# Must run before anything imports socket/threading users: nameko containers hang without it.
eventlet.monkey_patch()

import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support.auth import create_session_store  # noqa: E402
from tests.support.broker import Vhost  # noqa: E402
from tests.support.processes import WireServer  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory):
    server = WireServer(tmp_path_factory.mktemp("nx-27017"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_uri(wire_server) -> str:
    return wire_server.uri


@pytest.fixture
def mongo_db_name() -> str:
    """A fresh database per test: tests never see each other's documents."""
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mongo_config(mongo_uri, mongo_db_name) -> dict:
    from pymongo import MongoClient

    from workers.db.commands import setup_database

    client = MongoClient(mongo_uri)
    setup_database(client[mongo_db_name])
    yield {"MONGO_URI": mongo_uri, "MONGO_DB": mongo_db_name, "MONGO_TIMEOUT_MS": 3000}
    client.drop_database(mongo_db_name)
    client.close()


@pytest.fixture(scope="session")
def amqp_uri() -> str:
    """A vhost for the whole session (e2e stacks); integration tests use nameko's per-test
    `rabbit_config` instead."""
    vhost = Vhost()
    vhost.create()
    yield vhost.uri
    vhost.delete()


@pytest.fixture
def service_config(rabbit_config, mongo_config) -> dict:
    """nameko config for one test: private vhost + private database."""
    return {**rabbit_config, **mongo_config, "serializer": "json"}


def pytest_configure(config):
    # The project never relies on nameko's plugin to monkey-patch (done above).
    config.option.suppress_eventlet_notification = True
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    # One credentials store for the session, exported so every stack a test starts (and every
    # edge a unit test builds) verifies against it; tests take its key from auth_headers().
    directory = Path(tempfile.mkdtemp(prefix="micro-auth-"))
    config._auth_dir = directory
    os.environ["AUTH_CREDENTIALS_FILE"] = str(create_session_store(directory))


def pytest_unconfigure(config):
    directory = getattr(config, "_auth_dir", None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
