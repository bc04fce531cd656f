"""NamekoRpcClient: one connection per thread, dropped after failures, broker errors typed.

Its wire behaviour (replies, errors, timeouts, recovery) is tested against the real broker
in tests/integration/test_edge_rpc_client.py; these tests cover the bookkeeping.
"""

from __future__ import annotations

import socket
import threading
import time

import amqp.exceptions
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


class FakeChannel:
    instances: list[FakeChannel] = []

    def __init__(self, amqp_uri: str, timeout: float) -> None:
        self.closed = False
        self.dead = False
        FakeChannel.instances.append(self)

    def looks_dead(self) -> bool:
        return self.dead

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_channels(monkeypatch) -> list[FakeChannel]:
    FakeChannel.instances = []
    monkeypatch.setattr(rpc, "ReplyChannel", FakeChannel)
    return FakeChannel.instances


def test_each_thread_keeps_its_own_connection(fake_channels) -> None:
    client = NamekoRpcClient("amqp://x/", timeout=1)
    seen: list[object] = []

    def use_twice() -> None:
        seen.append(client._channel())
        seen.append(client._channel())

    threads = [threading.Thread(target=use_twice) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake_channels) == 3  # reused within a thread, never shared across threads
    assert len({id(channel) for channel in seen}) == 3


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RpcTimeout(), RpcTimeout),
        (ConnectionResetError("reset"), BrokerUnavailable),
        (amqp.exceptions.ConnectionForced("closed via management plugin"), BrokerUnavailable),
        (amqp.exceptions.RecoverableConnectionError("connection already closed"),
         BrokerUnavailable),
    ],
)  # fmt: skip
def test_failed_connection_is_discarded_and_rebuilt(fake_channels, error, expected) -> None:
    client = NamekoRpcClient("amqp://x/", timeout=1)
    first = client._channel()

    def fail() -> None:
        raise error

    with pytest.raises(expected):
        client._guarded(fail)

    assert first.closed
    assert client._channel() is not first


def test_worker_errors_keep_the_connection(fake_channels) -> None:
    client = NamekoRpcClient("amqp://x/", timeout=1)
    first = client._channel()

    def fail() -> None:
        raise KeyError("a worker said no")

    with pytest.raises(KeyError):
        client._guarded(fail)
    assert client._channel() is first and not first.closed


def test_a_connection_the_broker_closed_between_calls_is_replaced(fake_channels) -> None:
    client = NamekoRpcClient("amqp://x/", timeout=1)
    first = client._channel()
    assert client._channel() is first  # alive: kept

    first.dead = True
    replacement = client._channel()
    assert replacement is not first and first.closed
