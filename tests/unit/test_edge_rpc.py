"""NamekoRpcClient: one connection per thread, dropped after failures, broker errors typed.

Its wire behaviour (replies, errors, timeouts, recovery) is tested against the real broker
in tests/integration/test_edge_rpc_client.py; these tests cover the bookkeeping.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import amqp
import amqp.exceptions
import amqp.serialization
import amqp.spec
import pytest
from kombu.transport import pyamqp
from kombu.utils import json as kombu_json
from nameko.exceptions import MethodNotFound, RpcTimeout, UnknownService

from http_edge import rpc
from http_edge.rpc import BrokerUnavailable, NamekoRpcClient
from tests.support.net import free_port as closed_port
from workers.runtime.resilient_rpc import publish_reply


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


# -- ReplyChannel on a stand-in for the broker connection ----------------------------------


class BrokerChannel(amqp.Channel):
    """py-amqp's channel (its own send_method and events), with the round trips answered
    from FakeBroker's state instead of a socket."""

    def exchange_declare(self, exchange: str, type: str, **kwargs: Any) -> None:
        self.connection.declared.append((exchange, type, kwargs))

    def basic_consume(self, queue: str, no_ack: bool, callback: Any) -> str:
        self.connection.consumers.append((queue, no_ack))
        self.connection.on_delivery = callback
        return "ctag"

    def queue_declare(self, queue: str, passive: bool = False) -> tuple[str, int, int]:
        assert passive
        self.connection.probes.append(queue)
        if queue not in self.connection.queues:
            raise amqp.exceptions.NotFound(f"NOT_FOUND - no queue '{queue}'")
        return queue, 0, self.connection.queues[queue]

    def close(self) -> None:
        self.connection.closed_channels.append(self.channel_id)


class FakeBroker:
    """Stands in for `amqp.Connection`: keeps how it was opened and every frame written;
    `drain_events` runs what `route` (the test's RabbitMQ) queued for the client to read."""

    confirm_publish = False
    channel_max = 16
    opened: list[FakeBroker] = []  # every connection a client connected
    serve: Any = None  # the `route` new connections start with

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.channels: dict[int, Any] = {}
        self._used_channel_ids: list[int] = []
        self.declared: list[Any] = []
        self.consumers: list[Any] = []
        self.probes: list[str] = []
        self.closed_channels: list[int] = []
        self.queues = {"rpc-echo": 1}  # queue -> consumers
        self.published: list[tuple[str, str, bool, amqp.Message]] = []
        self.readable: list[Any] = []  # callables run by drain_events, one per read
        self.on_delivery: Any = None
        self.route: Any = FakeBroker.serve
        self.collected = False
        self.sock: Any = None

    def connect(self) -> None:
        self.connected = True
        # A quiet socket: nothing to read between calls, as on a healthy connection.
        self.sock, self.peer = socket.socketpair()
        FakeBroker.opened.append(self)

    def channel(self) -> BrokerChannel:
        return BrokerChannel(self)

    def _get_free_channel_id(self) -> int:
        self._used_channel_ids.append(len(self._used_channel_ids) + 1)
        return self._used_channel_ids[-1]

    def frame_writer(self, frame_type: int, channel_id: int, sig: Any, args: bytes, content: Any):
        assert sig == amqp.spec.Basic.Publish
        (_, exchange, key, mandatory, _), _ = amqp.serialization.loads("Bssbb", args, 0)
        self.published.append((exchange, key, mandatory, content))
        if self.route is not None:
            self.route(self, exchange, key, content)

    def drain_events(self, timeout: float | None = None) -> None:
        if not self.readable:
            time.sleep(min(timeout or 0.01, 0.01))
            raise TimeoutError("timed out")  # what py-amqp raises when nothing came
        self.readable.pop(0)()

    def collect(self) -> None:
        self.collected = True


def deliver_reply(broker: FakeBroker, body: Any, correlation_id: str) -> None:
    message = amqp.Message(body, correlation_id=correlation_id, content_type="application/json")
    broker.readable.append(lambda: broker.on_delivery(message))


def return_unroutable(broker: FakeBroker, exchange: str, key: str, message: Any) -> None:
    """What RabbitMQ does with a `mandatory` message no queue is bound for."""
    [channel] = [c for c in broker.channels.values() if c.events["basic_return"]]
    error = amqp.exceptions.error_for_code(312, "NO_ROUTE", (60, 40), amqp.exceptions.ChannelError)
    for callback in channel.events["basic_return"]:
        broker.readable.append(lambda cb=callback: cb(error, exchange, key, message))


def echo_worker(broker: FakeBroker, exchange: str, key: str, request: amqp.Message) -> None:
    """RabbitMQ plus one worker using the services' reply path (workers.runtime.resilient_rpc)."""
    worker_side = FakeBroker()
    worker_side.route = None  # records the reply instead of routing it
    delivered = amqp.Message(request.body, **request.properties)
    # The broker rewrites the direct reply-to name into one only this client can receive.
    delivered.properties["reply_to"] = request.properties["reply_to"] + ".g1h2AA5y"
    delivered.delivery_info = {"routing_key": key, "delivery_tag": 1}
    message = pyamqp.Channel(worker_side).message_to_python(delivered)
    payload = message.decode()
    result = {"args": payload["args"], "kwargs": payload["kwargs"],
              "headers": message.headers}  # fmt: skip
    publish_reply(message, result, None, exchange="")
    [(reply_exchange, reply_key, _, reply)] = worker_side.published
    assert (reply_exchange, reply_key) == ("", delivered.properties["reply_to"])
    broker.readable.append(lambda: broker.on_delivery(reply))


@pytest.fixture
def broker(monkeypatch) -> Iterator[type[FakeBroker]]:
    FakeBroker.opened = []
    monkeypatch.setattr(FakeBroker, "serve", None)
    monkeypatch.setattr(rpc.amqp, "Connection", FakeBroker)
    yield FakeBroker
    for connection in FakeBroker.opened:
        connection.sock.close()
        connection.peer.close()


def test_a_reply_channel_opens_what_the_uri_says(broker) -> None:
    channel = rpc.ReplyChannel("amqp://edge:s3cret@rabbit.internal:5673/prod", timeout=2.5)
    [opened] = broker.opened
    assert opened.kwargs["host"] == "rabbit.internal:5673"
    assert (opened.kwargs["userid"], opened.kwargs["password"]) == ("edge", "s3cret")
    assert opened.kwargs["virtual_host"] == "prod"
    assert (opened.kwargs["connect_timeout"], opened.kwargs["write_timeout"]) == (2.5, 2.5)
    assert opened.kwargs["client_properties"] == {
        "connection_name": f"http_edge pid {os.getpid()}"
    }
    assert opened.connected and channel.expiration == "2500"
    # Only checked: the edge's own broker account may not declare it (launch/broker_accounts).
    assert opened.declared == [("nameko-rpc", "topic", {"passive": True})]
    assert opened.consumers == [("amq.rabbitmq.reply-to", True)]  # direct reply-to, no acks

    rpc.ReplyChannel("amqp://", timeout=30)
    defaults = broker.opened[1].kwargs
    assert (defaults["host"], defaults["userid"], defaults["virtual_host"]) == (
        "localhost:5672", "guest", "/")  # fmt: skip
    assert defaults["connect_timeout"] == 5.0  # connecting never waits the whole RPC timeout
    assert rpc.ReplyChannel("amqp://", timeout=0.0001).expiration == "1"


def test_a_request_carries_nameko_s_wire_format(broker) -> None:
    channel = rpc.ReplyChannel("amqp://", timeout=5)
    correlation_id = channel.publish("echo", "echo", (1, "two"), {"x": 3}, {"request_id": "r-9"})

    [(exchange, key, mandatory, message)] = broker.opened[0].published
    assert (exchange, key, mandatory) == ("nameko-rpc", "echo.echo", True)
    assert kombu_json.loads(message.body) == {"args": [1, "two"], "kwargs": {"x": 3}}
    properties = message.properties
    assert properties["reply_to"] == "amq.rabbitmq.reply-to"
    assert properties["correlation_id"] == correlation_id
    assert properties["delivery_mode"] == 1 and properties["expiration"] == "5000"
    assert properties["content_type"] == "application/json"
    assert properties["application_headers"] == {
        "nameko.request_id": "r-9",
        "nameko.call_id_stack": [f"http_edge.echo.{correlation_id}"],
    }


def test_a_call_round_trips_through_the_workers_reply_path(broker, monkeypatch) -> None:
    monkeypatch.setattr(FakeBroker, "serve", staticmethod(echo_worker))
    client = NamekoRpcClient("amqp://", timeout=2)

    reply = client.call("echo", "echo", [1, "two"], suffix="!", context={"request_id": "r"})
    again = client.call("echo", "echo", 2, context={"request_id": "s"})

    assert reply["args"] == [[1, "two"]] and reply["kwargs"] == {"suffix": "!"}
    assert reply["headers"]["nameko.request_id"] == "r"
    assert again["args"] == [2] and again["headers"]["nameko.request_id"] == "s"
    [connection] = broker.opened  # one connection, reused
    assert connection.probes == ["rpc-echo"]  # consumers checked once per connection


def test_a_remote_error_is_raised_as_its_type(broker) -> None:
    channel = rpc.ReplyChannel("amqp://", timeout=5)
    correlation_id = channel.publish("echo", "get", ("u-1",), {}, {})
    error = {"exc_path": "nameko.exceptions.MethodNotFound", "exc_type": "MethodNotFound",
             "exc_args": ["get"], "value": "get"}  # fmt: skip
    deliver_reply(broker.opened[0], kombu_json.dumps({"result": None, "error": error}),
                  correlation_id)  # fmt: skip
    with pytest.raises(MethodNotFound):
        channel.wait(correlation_id, time.monotonic() + 1)


@pytest.mark.parametrize(
    ("queues", "expected"),
    [({}, "no queue"), ({"rpc-echo": 0}, "no consumer")],
)
def test_a_service_nobody_serves_is_unknown_before_anything_is_sent(
    broker, queues, expected
) -> None:
    channel = rpc.ReplyChannel("amqp://", timeout=5)
    connection = broker.opened[0]
    connection.queues = queues
    with pytest.raises(UnknownService):
        channel.publish("echo", "echo", (1,), {}, {})
    assert connection.published == []
    assert connection.probes == ["rpc-echo"]

    connection.queues = {"rpc-echo": 2}  # the service came (back): checked again, then sent
    channel.publish("echo", "echo", (1,), {}, {})
    channel.publish("echo", "echo", (2,), {}, {})
    assert connection.probes == ["rpc-echo", "rpc-echo"] and len(connection.published) == 2
    channel.publish("echo", "ping", (), {}, {}, verify_consumers=True)  # readiness re-asks
    assert connection.probes == ["rpc-echo"] * 3


def test_a_returned_request_is_unknown_service(broker) -> None:
    channel = rpc.ReplyChannel("amqp://", timeout=5)
    broker.opened[0].route = return_unroutable
    correlation_id = channel.publish("echo", "echo", (1,), {}, {})
    with pytest.raises(UnknownService) as raised:
        channel.wait(correlation_id, time.monotonic() + 1)
    assert raised.value.args == ("echo",)


def test_a_reply_that_never_comes_times_out_and_a_late_one_is_dropped(broker, caplog) -> None:
    channel = rpc.ReplyChannel("amqp://", timeout=5)
    correlation_id = channel.publish("echo", "echo", (1,), {}, {})
    started = time.monotonic()
    with pytest.raises(RpcTimeout):
        channel.wait(correlation_id, time.monotonic() + 0.1)
    assert 0.1 <= time.monotonic() - started < 1

    caplog.set_level(logging.DEBUG, logger="http_edge.rpc")
    later = channel.publish("echo", "echo", (2,), {}, {})
    connection = broker.opened[0]
    deliver_reply(connection, b'{"result": "late", "error": null}', correlation_id)
    deliver_reply(connection, b'{"result": "on time", "error": null}', later)
    assert channel.wait(later, time.monotonic() + 1) == "on time"
    assert f"reply for an unknown correlation id {correlation_id} dropped" in caplog.text
    assert channel._waiting == set() and channel._outcomes == {}


def test_looks_dead_once_anything_is_readable_between_calls(broker) -> None:
    channel = rpc.ReplyChannel("amqp://", timeout=5)
    connection = broker.opened[0]
    assert not channel.looks_dead()
    connection.peer.sendall(b"\x01")  # a frame nobody waits for (a late reply, a close)
    assert channel.looks_dead()

    second = rpc.ReplyChannel("amqp://", timeout=5)
    broker.opened[1].peer.close()  # the broker (or a proxy) closed it: EOF is readable
    assert second.looks_dead()
    third = rpc.ReplyChannel("amqp://", timeout=5)
    broker.opened[2].sock.close()
    assert third.looks_dead()  # a closed socket is dead too


def test_closing_a_broken_connection_never_raises(broker) -> None:
    channel = rpc.ReplyChannel("amqp://", timeout=5)

    def broken() -> None:
        raise OSError("socket already gone")

    channel.connection.collect = broken
    channel.close()  # logged at debug level, not raised
    healthy = rpc.ReplyChannel("amqp://", timeout=5)
    healthy.close()
    assert healthy.connection.collected


def test_ping_reports_each_service_and_drops_a_connection_that_timed_out(broker) -> None:
    client = NamekoRpcClient("amqp://", timeout=5)
    channel = client._channel()
    connection = broker.opened[0]
    connection.queues = {"rpc-echo": 1, "rpc-slow": 1}

    def route(broker_: FakeBroker, exchange: str, key: str, message: Any) -> None:
        if key == "echo.ping":
            deliver_reply(broker_, b'{"result": {}, "error": null}',
                          message.properties["correlation_id"])  # fmt: skip

    connection.route = route
    results = client.ping(["echo", "slow", "gone"], timeout=0.2, context={})

    assert results["echo"] is None
    assert isinstance(results["slow"], RpcTimeout)
    assert isinstance(results["gone"], UnknownService)
    assert connection.collected and client._channel() is not channel  # started afresh


def test_a_connection_error_while_waiting_is_broker_unavailable(broker, monkeypatch) -> None:
    def reset() -> None:
        raise ConnectionResetError("connection reset by peer")

    def reset_after_publish(connection: FakeBroker, exchange: str, key: str, message: Any):
        connection.readable.append(reset)

    monkeypatch.setattr(FakeBroker, "serve", staticmethod(reset_after_publish))
    client = NamekoRpcClient("amqp://", timeout=5)
    with pytest.raises(BrokerUnavailable, match="connection reset by peer"):
        client.call("echo", "echo", 1, context={})
    with pytest.raises(BrokerUnavailable, match="connection reset by peer"):
        client.ping(["echo"], timeout=1, context={})
    first, second = broker.opened  # each failure dropped its connection
    assert first.collected and second.collected
