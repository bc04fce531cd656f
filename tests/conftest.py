"""Root fixtures: eventlet first, then a private Mongo wire server and a private vhost."""

import eventlet

# Must run before anything imports socket/threading users: nameko containers hang without it.
eventlet.monkey_patch()

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RABBIT_API = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
RABBIT_HOST = os.environ.get("RABBIT_HOST", "127.0.0.1:5672")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout}s")


class WireServer:
    """An nx-27017 process on a free port with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                str(BIN / "nx-27017"),
                "--data-dir",
                str(self.data_dir / "db"),
                "-p",
                str(self.port),
                "--log-file",
                str(self.data_dir / "nx.log"),
                "--pid-file",
                str(self.data_dir / "nx.pid"),
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


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

    from workers.db_commands import setup_database

    client = MongoClient(mongo_uri)
    setup_database(client[mongo_db_name])
    yield {"MONGO_URI": mongo_uri, "MONGO_DB": mongo_db_name, "MONGO_TIMEOUT_MS": 3000}
    client.drop_database(mongo_db_name)
    client.close()


class Vhost:
    """A private vhost on the real broker, so tests never touch another run's queues."""

    def __init__(self) -> None:
        self.name = f"test-{uuid.uuid4().hex[:10]}"

    def create(self) -> None:
        response = requests.put(f"{RABBIT_API}/api/vhosts/{self.name}", timeout=10)
        response.raise_for_status()
        response = requests.put(
            f"{RABBIT_API}/api/permissions/{self.name}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            timeout=10,
        )
        response.raise_for_status()

    def delete(self) -> None:
        requests.delete(f"{RABBIT_API}/api/vhosts/{self.name}", timeout=10)

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@{RABBIT_HOST}/{self.name}"


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
