"""Queue types on the real broker: what the workers declare, and what happens when an older
version left a classic queue behind (workers/runtime/queue_types.py, docs/clustering.md)."""

from __future__ import annotations

import socket
import urllib.parse

import pytest
import requests
from kombu import Connection, Queue

from http_edge.rpc import NamekoRpcClient
from tests.support.broker import RABBIT_API
from workers.runtime.queue_types import QueueTypeMismatch
from workers.runtime.resilient_rpc import rpc


class Echo:
    name = "echo_types"

    @rpc
    def echo(self, value: str) -> str:
        return value


def queue_types(vhost: str) -> dict[str, str]:
    quoted = urllib.parse.quote(vhost, safe="")
    response = requests.get(f"{RABBIT_API}/api/queues/{quoted}", timeout=10)
    response.raise_for_status()
    return {queue["name"]: queue["type"] for queue in response.json()}


def test_consumed_queues_are_quorum_and_reply_queues_classic(stack, rabbit_config) -> None:
    types = queue_types(rabbit_config["vhost"])
    events = [name for name in types if name.startswith("evt-")]
    assert len(events) == 4  # two orders handler queues and their dead-letter queues
    for name in ["rpc-users_v1", "rpc-users_v2", "rpc-orders", *events]:
        assert types[name] == "quorum", (name, types)
    replies = [name for name in types if name.startswith("rpc.reply-")]
    assert replies  # orders' RpcProxy to users
    assert {types[name] for name in replies} == {"classic"}


def test_a_classic_queue_left_by_an_older_version_stops_the_worker_clearly(
    container_factory, rabbit_config
) -> None:
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        Queue("rpc-echo_types", durable=True)(connection.default_channel).declare()
    container = container_factory(Echo, rabbit_config)
    with pytest.raises(QueueTypeMismatch, match="rpc-echo_types.*docs/clustering.md"):
        container.start()
    assert queue_types(rabbit_config["vhost"])["rpc-echo_types"] == "classic"  # untouched


def test_a_single_broker_may_choose_a_classic_rpc_queue_and_it_answers(
    container_factory, rabbit_config
) -> None:
    container = container_factory(Echo, {**rabbit_config, "RPC_QUEUE_TYPE": "classic"})
    container.start()
    assert queue_types(rabbit_config["vhost"])["rpc-echo_types"] == "classic"
    client = NamekoRpcClient(rabbit_config["AMQP_URI"], timeout=5)
    try:
        assert client.call("echo_types", "echo", "hi", context={}) == "hi"
    finally:
        client.discard()


def test_an_unknown_rpc_queue_type_stops_the_worker_with_the_choices(
    container_factory, rabbit_config
) -> None:
    container = container_factory(Echo, {**rabbit_config, "RPC_QUEUE_TYPE": "stream"})
    with pytest.raises(ValueError, match="RPC_QUEUE_TYPE must be one of quorum, classic"):
        container.start()
    assert "rpc-echo_types" not in queue_types(rabbit_config["vhost"])


def test_the_edge_client_fails_over_to_the_next_listed_node(
    container_factory, rabbit_config
) -> None:
    container_factory(Echo, rabbit_config).start()
    with socket.socket() as closed:  # a port nobody listens on: a node that is down
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    real = rabbit_config["AMQP_URI"]
    down = urllib.parse.urlsplit(real)._replace(netloc=f"guest:guest@127.0.0.1:{dead}").geturl()
    client = NamekoRpcClient(f"{down};{real}", timeout=5)
    try:
        assert client.call("echo_types", "echo", "a", context={}) == "a"
        assert client._local.node == 1  # the second listed node
        client.discard()  # after a failure the next node is tried first: the first again
        assert client.call("echo_types", "echo", "b", context={}) == "b"
        assert client._local.node == 1
    finally:
        client.discard()
