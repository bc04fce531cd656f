"""NamekoRpcClient: one proxy per thread, dropped after failures, broker errors typed."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from nameko.exceptions import RpcTimeout

from http_edge import rpc
from http_edge.rpc import BrokerUnavailable, NamekoRpcClient


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_broker_fails_fast_as_broker_unavailable() -> None:
    client = NamekoRpcClient(f"amqp://guest:guest@127.0.0.1:{closed_port()}/", timeout=5)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        client.call("orders", "get", "o-1", context={"request_id": "r"})
    with pytest.raises(BrokerUnavailable):
        client.ping(["orders"], timeout=1, context={"request_id": "r"})
    assert time.monotonic() - started < 5


class FakeStandalone:
    instances: list[FakeStandalone] = []

    def __init__(self, config: dict, timeout: float) -> None:
        self.stopped = False
        FakeStandalone.instances.append(self)

    def start(self) -> None:
        return None

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake_proxies(monkeypatch) -> list[FakeStandalone]:
    FakeStandalone.instances = []
    monkeypatch.setattr(rpc, "ClusterRpcProxy", FakeStandalone)
    return FakeStandalone.instances


def test_each_thread_keeps_its_own_connection(fake_proxies) -> None:
    client = NamekoRpcClient("amqp://x/", timeout=1)
    seen: list[object] = []

    def use_twice() -> None:
        seen.append(client._standalone())
        seen.append(client._standalone())

    threads = [threading.Thread(target=use_twice) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake_proxies) == 3  # reused within a thread, never shared across threads
    assert len({id(proxy) for proxy in seen}) == 3


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RpcTimeout(1), RpcTimeout),
        (ConnectionResetError("reset"), BrokerUnavailable),
        (RuntimeError("This consumer has been disconnected"), BrokerUnavailable),
    ],
)
def test_failed_connection_is_discarded_and_rebuilt(fake_proxies, error, expected) -> None:
    client = NamekoRpcClient("amqp://x/", timeout=1)
    first = client._standalone()

    def fail() -> None:
        raise error

    with pytest.raises(expected):
        client._guarded(fail)

    assert first.stopped
    assert client._standalone() is not first


def test_worker_errors_keep_the_connection(fake_proxies) -> None:
    client = NamekoRpcClient("amqp://x/", timeout=1)
    first = client._standalone()

    def fail() -> None:
        raise KeyError("a worker said no")

    with pytest.raises(KeyError):
        client._guarded(fail)
    assert client._standalone() is first and not first.stopped
