"""The edge's RPC client against the real broker and real nameko workers.

The client speaks nameko's wire protocol itself (py-amqp, not ClusterRpcProxy), so these
tests hold it to what nameko's own proxy does: results, context headers, typed errors,
UnknownService, timeouts, concurrency and recovery after the broker drops it.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Any

import eventlet
import pytest
import requests
from nameko.exceptions import (
    IncorrectSignature,
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)
from nameko.extensions import DependencyProvider

from http_edge.rpc import NamekoRpcClient
from tests.support.broker import RABBIT_API
from tests.support.polling import wait_until
from workers.exceptions import UserNotFound
from workers.runtime.resilient_rpc import (
    rpc,  # the workers' entrypoint: its reply path is tested too
)


class ContextData(DependencyProvider):
    def get_dependency(self, worker_ctx: Any) -> dict:
        return {**worker_ctx.data, "call_id_stack": worker_ctx.call_id_stack}


class EchoService:
    name = "echo"
    context = ContextData()
    executed: list[Any] = []  # every echo value, in the order the workers ran them

    @rpc
    def echo(self, value: Any, *, suffix: str = "") -> dict:
        EchoService.executed.append(value)
        return {"value": value, "suffix": suffix, "context": self.context}

    @rpc
    def slow(self, seconds: float) -> str:
        eventlet.sleep(seconds)
        return "late"

    @rpc
    def missing_user(self, user_id: str) -> None:
        raise UserNotFound(user_id)

    @rpc
    def unserializable(self) -> object:
        return object()

    @rpc
    def ping(self) -> dict:
        return {"service": self.name}


@pytest.fixture
def echo(container_factory, rabbit_config):
    container = container_factory(EchoService, rabbit_config)
    container.start()
    return container


@pytest.fixture
def client(rabbit_config) -> NamekoRpcClient:
    client = NamekoRpcClient(rabbit_config["AMQP_URI"], timeout=5)
    yield client
    client.discard()


CONTEXT = {"request_id": "req-123"}


def test_result_and_context_headers_reach_the_worker(echo, client) -> None:
    reply = client.call("echo", "echo", [1, "two"], suffix="!", context=CONTEXT)

    assert reply["value"] == [1, "two"] and reply["suffix"] == "!"
    assert reply["context"]["request_id"] == "req-123"
    [caller] = reply["context"]["call_id_stack"][:-1]
    assert caller.startswith("http_edge.echo.")  # the edge appears as the caller


def test_typed_errors_come_back_as_instances(echo, client) -> None:
    with pytest.raises(UserNotFound) as raised:
        client.call("echo", "missing_user", "u-1", context=CONTEXT)
    assert raised.value.args == ("u-1",)
    with pytest.raises(MethodNotFound):
        client.call("echo", "no_such_method", context=CONTEXT)


def test_wrong_arguments_are_refused_before_the_method_runs(echo, client) -> None:
    # workers.runtime.resilient_rpc checks arguments against a signature built once per entrypoint.
    EchoService.executed.clear()
    missing = r"echo\(\): missing a required argument: 'value'"
    with pytest.raises(IncorrectSignature, match=missing):
        client.call("echo", "echo", context=CONTEXT)
    with pytest.raises(IncorrectSignature, match="unexpected keyword argument 'colour'"):
        client.call("echo", "echo", 1, colour="red", context=CONTEXT)
    with pytest.raises(IncorrectSignature, match="too many positional arguments"):
        client.call("echo", "ping", 1, context=CONTEXT)
    assert EchoService.executed == []
    assert client.call("echo", "echo", 2, suffix="?", context=CONTEXT)["suffix"] == "?"


def test_an_unserializable_result_is_an_error_not_a_dead_worker(echo, client) -> None:
    with pytest.raises(RemoteError) as raised:
        client.call("echo", "unserializable", context=CONTEXT)
    assert raised.value.exc_type == "UnserializableValueError"
    assert client.call("echo", "echo", "still here", context=CONTEXT)["value"] == "still here"


def test_replies_also_work_when_the_consumer_connection_confirms(
    container_factory, rabbit_config
) -> None:
    # Replies then go through a pooled producer (a confirm on the consumer's own channel
    # would race the consumer's reads); the answer must be the same.
    config = {**rabbit_config, "TRANSPORT_OPTIONS": {"confirm_publish": True}}
    container_factory(EchoService, config).start()
    client = NamekoRpcClient(rabbit_config["AMQP_URI"], timeout=5)
    assert client.call("echo", "echo", "confirmed", context=CONTEXT)["value"] == "confirmed"
    with pytest.raises(UserNotFound):
        client.call("echo", "missing_user", "u-2", context=CONTEXT)
    client.discard()


def test_a_service_nobody_runs_is_unknown_at_once(echo, client) -> None:
    started = time.monotonic()
    with pytest.raises(UnknownService):
        client.call("no_such_service", "get", "x", context=CONTEXT)
    assert time.monotonic() - started < 1  # the broker's return, not the 5 s timeout
    assert client.call("echo", "echo", 1, context=CONTEXT)["value"] == 1


def test_a_service_whose_queue_has_no_consumer_is_unknown_at_once(rabbit_config) -> None:
    # A stopped nameko service leaves its durable queue behind, without consumers (so does
    # one still reconnecting after a broker restart): 503, not a request left to time out.
    client = NamekoRpcClient(rabbit_config["AMQP_URI"], timeout=5)
    channel = client._channel().connection.channel()
    channel.exchange_declare("nameko-rpc", "topic", durable=True, auto_delete=False)
    channel.queue_declare("rpc-idle", durable=True, auto_delete=False)
    channel.queue_bind("rpc-idle", "nameko-rpc", "idle.*")
    started = time.monotonic()
    with pytest.raises(UnknownService):
        client.call("idle", "get", "x", context=CONTEXT)
    assert time.monotonic() - started < 1
    _, waiting, _ = channel.queue_declare("rpc-idle", passive=True)
    assert waiting == 0  # nothing was published to pile up
    client.discard()


def test_a_request_nobody_took_in_time_is_never_run_late(container_factory, rabbit_config):
    container = container_factory(EchoService, rabbit_config)
    container.start()
    client = NamekoRpcClient(rabbit_config["AMQP_URI"], timeout=0.5)
    assert client.call("echo", "echo", "first", context=CONTEXT)["value"] == "first"
    container.stop()  # the queue stays, without a consumer
    with pytest.raises(RpcTimeout):
        client.call("echo", "echo", "given up", context=CONTEXT)  # 504 at the edge
    eventlet.sleep(1.0)  # the request's expiration (the RPC timeout) passes
    container_factory(EchoService, rabbit_config).start()
    assert client.call("echo", "echo", "third", context=CONTEXT)["value"] == "third"
    eventlet.sleep(0.3)
    assert "given up" not in EchoService.executed
    client.discard()


def test_timeout_then_the_next_call_gets_its_own_answer(echo, rabbit_config) -> None:
    client = NamekoRpcClient(rabbit_config["AMQP_URI"], timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RpcTimeout):
        client.call("echo", "slow", 1.0, context=CONTEXT)
    assert 0.5 <= time.monotonic() - started < 1.0
    eventlet.sleep(0.8)  # the late "late" is published meanwhile
    assert client.call("echo", "echo", "mine", context=CONTEXT)["value"] == "mine"
    client.discard()


def test_threads_never_see_each_others_replies(echo, client) -> None:
    mismatches: list[tuple[int, Any]] = []

    def caller(n: int) -> None:
        for i in range(25):
            value = f"{n}-{i}"
            got = client.call("echo", "echo", value, context=CONTEXT)["value"]
            if got != value:
                mismatches.append((n, got))

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


def test_ping_reports_each_service(echo, client) -> None:
    results = client.ping(["echo", "no_such_service"], timeout=2, context=CONTEXT)

    assert results["echo"] is None
    assert isinstance(results["no_such_service"], UnknownService)


def _client_connections(vhost: str) -> list[str]:
    response = requests.get(
        f"{RABBIT_API}/api/vhosts/{urllib.parse.quote(vhost, safe='')}/connections", timeout=5
    )
    response.raise_for_status()
    # Only the edge client's own: it names its connections, nameko's (kombu) do not.
    return [
        c["name"]
        for c in response.json()
        if c.get("user_provided_name", "").startswith("http_edge")
    ]


def test_a_connection_the_broker_dropped_is_replaced_before_the_call(
    echo, client, rabbit_config
) -> None:
    assert client.call("echo", "echo", "before", context=CONTEXT)["value"] == "before"
    vhost = urllib.parse.urlparse(rabbit_config["AMQP_URI"]).path.lstrip("/")
    names = wait_until(lambda: _client_connections(vhost))
    for name in names:
        requests.delete(
            f"{RABBIT_API}/api/connections/{urllib.parse.quote(name, safe='')}", timeout=5
        ).raise_for_status()

    eventlet.sleep(0.5)  # the broker's connection.close reaches the idle client

    # The close is noticed before publishing: the call goes out on a fresh connection.
    assert client.call("echo", "echo", "after", context=CONTEXT)["value"] == "after"
    assert client._channel() is client._channel()
