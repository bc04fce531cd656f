"""bench.relay's measurement against the real broker: it must keep measuring what it says."""

from __future__ import annotations

import psutil

from bench.relay import PAYLOAD, in_process, over_rpc
from bench.relay_echo import RelayEcho
from http_edge.rpc import NamekoRpcClient


def test_the_relay_bench_counts_calls_and_cpu_through_the_broker(
    container_factory, rabbit_config
) -> None:
    container_factory(RelayEcho, rabbit_config).start()
    client = NamekoRpcClient(rabbit_config["AMQP_URI"], timeout=5)
    try:
        assert client.call("relay_echo", "echo", PAYLOAD, context={}) == PAYLOAD
        # The worker runs in this process here, so "caller" and "worker" both see it.
        measured = over_rpc(client, psutil.Process(), threads=2, seconds=0.5)
    finally:
        client.discard()
    assert measured["calls_per_s"] > 10
    assert measured["caller"] > 0 and measured["worker"] > 0
    assert measured["rabbitmq"] > 0  # the broker's own process was found and measured
    baseline = in_process(0.2)
    assert baseline["calls_per_s"] > measured["calls_per_s"]
