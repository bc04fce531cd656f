"""The nameko, py-amqp and kombu internals that common.wire and workers/ build on.

The reply path, the edge's client and the reliable consumers subclass nameko classes and
call py-amqp below its public API. These tests fail first, with what to re-check, when a
version moves under them.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import inspect
from pathlib import Path
from typing import Any

import amqp
import amqp.spec
import kombu.serialization
import pytest
from kombu.mixins import ConsumerMixin
from kombu.transport import pyamqp
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler
from nameko.extensions import Entrypoint
from nameko.messaging import QueueConsumer
from nameko.rpc import Responder, Rpc, RpcConsumer

from common import wire
from workers.runtime import reliable_events, resilient_rpc

# The versions every subclass and internal call below was read against and tested with.
VERIFIED_WITH = {"nameko": "2.14.1", "amqp": "5.4.2", "kombu": "5.7.0"}
RECHECK = (
    "re-read {package} {found}'s source for what common/wire.py, http_edge/rpc.py, "
    "workers/runtime/resilient_rpc.py and workers/runtime/reliable_events.py override or "
    "call (this file "
    "lists each), run tests/integration and tests/reliability, then update VERIFIED_WITH "
    "and the pin in setup.cfg"
)


def parameters(function: Any) -> list[tuple[str, Any, Any]]:
    """Names, kinds and defaults: what a caller relies on (annotations are ours alone)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def parameters_names(function: Any) -> list[str]:
    return [name for name, *_ in parameters(function)]


@pytest.mark.parametrize("package", sorted(VERIFIED_WITH))
def test_the_installed_version_is_the_one_the_code_was_verified_on(package: str) -> None:
    found = importlib.metadata.version(package)
    assert found == VERIFIED_WITH[package], (
        f"{package} is {found}, verified on {VERIFIED_WITH[package]}: "
        + RECHECK.format(package=package, found=found)
    )


def test_setup_cfg_pins_the_verified_versions() -> None:
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    requires = config["options"]["install_requires"].split()
    for package, version in VERIFIED_WITH.items():
        assert f"{package}=={version}" in requires, (
            f"setup.cfg must pin {package}=={version} exactly: " + RECHECK.format(
                package=package, found="(unpinned)")
        )  # fmt: skip


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (resilient_rpc.ResilientRpcConsumer.handle_result, RpcConsumer.handle_result),
        (resilient_rpc.ResilientRpc.setup, Rpc.setup),
        (resilient_rpc.ResilientRpc.check_signature, Entrypoint.check_signature),
        (reliable_events.ReliableEventHandler.setup, EventHandler.setup),
        (reliable_events.ReliableEventHandler.handle_result, EventHandler.handle_result),
        (
            reliable_events.DeadLetteringQueueConsumer.on_decode_error,
            QueueConsumer.on_decode_error,
        ),
    ],
    ids=lambda f: f.__qualname__,
)
def test_overrides_keep_the_signature_nameko_calls_them_with(ours: Any, theirs: Any) -> None:
    assert parameters(ours) == parameters(theirs), (
        f"{theirs.__module__}.{theirs.__qualname__} changed its signature: "
        + RECHECK.format(package="nameko/kombu", found="(installed)")
    )


def test_the_nameko_and_kombu_calls_workers_make_still_fit() -> None:
    # nameko's Rpc.handle_result hands the consumer exactly these (ResilientRpcConsumer).
    assert "self.rpc_consumer.handle_result(\n            message, result, exc_info)" in (
        inspect.getsource(Rpc.handle_result)
    ), RECHECK.format(package="nameko", found=importlib.metadata.version("nameko"))
    # ReplyResponder is built like nameko's RpcConsumer builds its Responder.
    expected = ["self", "amqp_uri", "exchange", "serializer", "message", "ssl", "login_method"]
    assert parameters_names(Responder.__init__) == expected
    assert issubclass(resilient_rpc.ReplyResponder, Responder)
    # ReplyPublisher's two class attributes are the knobs nameko's Publisher reads.
    assert Publisher.use_confirms is True and resilient_rpc.ReplyPublisher.use_confirms is False
    assert {"use_confirms", "delivery_mode"} <= set(parameters_names(Publisher.__init__))
    # kombu calls on_decode_error on the consumer mixin nameko's QueueConsumer is.
    assert issubclass(QueueConsumer, ConsumerMixin)
    assert "on_decode_error=self.on_decode_error" in inspect.getsource(ConsumerMixin.Consumer)


def test_the_py_amqp_calls_common_wire_makes_still_fit() -> None:
    found = importlib.metadata.version("amqp")
    recheck = RECHECK.format(package="amqp", found=found)
    # wire.publish is basic_publish's own send_method call, without its drain_events.
    source = inspect.getsource(amqp.Channel._basic_publish)
    assert "spec.Basic.Publish, argsig," in source, recheck
    assert "(0, exchange, routing_key, mandatory, immediate), msg" in source, recheck
    assert inspect.signature(amqp.Channel._basic_publish).parameters["argsig"].default == "Bssbb"
    assert parameters_names(amqp.Channel.send_method)[:5] == [
        "self", "sig", "format", "args", "content"], recheck  # fmt: skip
    assert amqp.spec.Basic.Publish == (60, 40), recheck
    # The edge's client: these calls and events, as http_edge/rpc.py makes them.
    assert {"timeout"} <= set(parameters_names(amqp.Connection.drain_events)), recheck
    assert callable(amqp.Connection.collect), recheck
    assert "basic_return" in inspect.getsource(amqp.Channel._on_basic_return), recheck
    for name in ("queue", "no_ack", "callback"):
        assert name in parameters_names(amqp.Channel.basic_consume), recheck
    assert "passive" in parameters_names(amqp.Channel.queue_declare), recheck
    # The workers' replies: kombu's py-amqp channel prepares them, its registry names them.
    assert parameters_names(pyamqp.Channel.prepare_message)[:6] == [
        "self", "body", "priority", "content_type", "content_encoding", "headers"]  # fmt: skip
    assert kombu.serialization.registry.type_to_name[wire.CONTENT_TYPE] == "json"
