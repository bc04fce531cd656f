"""common.wire and the workers' reply path (workers.runtime.resilient_rpc), without a broker.

Channels are py-amqp's and kombu's own, on a connection that records the frames it would
write to the socket; what a test checks is what would have gone over the wire.
"""

from __future__ import annotations

import sys
from typing import Any

import amqp
import amqp.exceptions
import amqp.serialization
import amqp.spec
import pytest
from kombu.transport import pyamqp
from nameko.containers import ServiceContainer
from nameko.exceptions import (
    IncorrectSignature,
    MethodNotFound,
    RemoteError,
    UnserializableValueError,
)
from nameko.messaging import HeaderDecoder

from common import wire
from workers.exceptions import UserNotFound
from workers.runtime import resilient_rpc


class RecordingConnection:
    """Where a py-amqp connection would write frames to the socket, this keeps them."""

    confirm_publish = False
    channel_max = 16

    def __init__(self) -> None:
        self.channels: dict[int, Any] = {}
        self._used_channel_ids: list[int] = []
        self.frames: list[tuple[Any, bytes, Any]] = []
        self.fail_with: BaseException | None = None

    def _get_free_channel_id(self) -> int:
        self._used_channel_ids.append(len(self._used_channel_ids) + 1)
        return self._used_channel_ids[-1]

    def frame_writer(self, frame_type: int, channel_id: int, sig: Any, args: bytes, content: Any):
        if self.fail_with is not None:
            raise self.fail_with
        self.frames.append((sig, args, content))

    def drain_events(self, timeout: float | None = None) -> None:
        raise AssertionError("common.wire.publish must not read the socket before publishing")

    def published(self) -> list[dict[str, Any]]:
        """Every basic.publish written: exchange, routing key, mandatory, and the message."""
        out = []
        for sig, args, content in self.frames:
            assert sig == amqp.spec.Basic.Publish
            (_, exchange, routing_key, mandatory, immediate), _ = amqp.serialization.loads(
                "Bssbb", args, 0
            )
            assert immediate is False
            out.append({"exchange": exchange, "routing_key": routing_key,
                        "mandatory": mandatory, "message": content})  # fmt: skip
        return out


# -- common.wire --------------------------------------------------------------------------


def test_publish_writes_one_basic_publish_frame_and_reads_nothing() -> None:
    connection = RecordingConnection()
    channel = amqp.Channel(connection)
    message = amqp.Message(b"{}", content_type=wire.CONTENT_TYPE)

    wire.publish(channel, message, "nameko-rpc", "echo.ping", mandatory=True)
    wire.publish(channel, message, "", "amq.rabbitmq.reply-to.abc")

    assert connection.published() == [
        {"exchange": "nameko-rpc", "routing_key": "echo.ping", "mandatory": True,
         "message": message},
        {"exchange": "", "routing_key": "amq.rabbitmq.reply-to.abc", "mandatory": False,
         "message": message},
    ]  # fmt: skip


def test_publish_on_a_closed_channel_is_a_broker_error() -> None:
    channel = amqp.Channel(RecordingConnection())
    channel.connection = None  # what py-amqp leaves after the channel or connection closed
    with pytest.raises(amqp.exceptions.RecoverableConnectionError) as raised:
        wire.publish(channel, amqp.Message(b"{}"), "nameko-rpc", "echo.ping")
    assert isinstance(raised.value, wire.BROKER_ERRORS + wire.CONNECTION_ERRORS)


def test_request_headers_unpack_into_nameko_context_data() -> None:
    headers = wire.request_headers({"request_id": "r-1", "traceparent": "00-ab"}, "edge.get.1")
    raw = amqp.Message(
        wire.request_body(("u-1",), {"full": True}),
        content_type=wire.CONTENT_TYPE,
        application_headers=headers,
    )
    raw.delivery_info = {"routing_key": "users_v1.get", "delivery_tag": 1}
    message = pyamqp.Message(raw)

    assert HeaderDecoder().unpack_message_headers(message) == {
        "request_id": "r-1",
        "traceparent": "00-ab",
        "call_id_stack": ["edge.get.1"],
    }
    assert message.decode() == {"args": ["u-1"], "kwargs": {"full": True}}


@pytest.mark.parametrize(
    ("reply_to", "direct"),
    [
        ("amq.rabbitmq.reply-to", True),
        ("amq.rabbitmq.reply-to.g1h2AA5yZXBseUAxMjM0.xyz", True),
        ("rpc.reply-standalone_rpc_proxy-8b1d", False),
    ],
)
def test_direct_reply_to_is_recognised_by_its_prefix(reply_to: str, direct: bool) -> None:
    assert wire.is_direct_reply_to(reply_to) is direct


def test_a_reply_round_trips_its_result() -> None:
    reply = wire.encode_reply({"userId": "u-1", "n": [1, 2]}, None, wire.CONTENT_TYPE)
    assert (reply.content_type, reply.content_encoding) == ("application/json", "utf-8")
    assert reply.exc_info is None
    assert wire.decode_reply(reply.body) == {"userId": "u-1", "n": [1, 2]}


@pytest.mark.parametrize(
    ("error", "expected"),
    [(UserNotFound("u-1"), UserNotFound), (MethodNotFound("nope"), MethodNotFound),
     (KeyError("plain"), RemoteError)],
)  # fmt: skip
def test_a_reply_round_trips_errors_as_their_types(error: Exception, expected: type) -> None:
    try:
        raise error
    except Exception:  # noqa: BLE001 - the exc_info a nameko worker hands over
        exc_info = sys.exc_info()
    reply = wire.encode_reply(None, exc_info, wire.CONTENT_TYPE)
    assert reply.exc_info is exc_info
    with pytest.raises(expected) as raised:
        wire.decode_reply(reply.body)
    assert type(raised.value) is expected
    if expected is RemoteError:
        assert raised.value.exc_type == "KeyError"


def test_an_unserializable_result_becomes_nameko_s_error() -> None:
    reply = wire.encode_reply(object(), None, wire.CONTENT_TYPE)
    assert reply.result is None
    assert reply.exc_info[0] is not None  # the serializer's own error, as nameko reports it
    with pytest.raises(RemoteError) as raised:
        wire.decode_reply(reply.body)
    assert raised.value.exc_type == UnserializableValueError.__name__


def test_a_reply_without_result_or_error_is_none() -> None:
    assert wire.decode_reply(b'{"result": null, "error": null}') is None


# -- workers.runtime.resilient_rpc: the reply path ------------------------------------------------


class FakeQueueConsumer:
    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.acked: list[Any] = []
        self.fail_with = fail_with

    def ack_message(self, message: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.acked.append(message)


class FakeContainer:
    config = {"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/none", "serializer": "json"}


def request(reply_to: str, connection: RecordingConnection | None = None) -> Any:
    """A request as a worker's kombu consumer hands it over, on a channel of its own."""
    channel = pyamqp.Channel(connection or RecordingConnection())
    raw = amqp.Message(
        wire.request_body((1,), {}),
        content_type=wire.CONTENT_TYPE,
        content_encoding="utf-8",
        reply_to=reply_to,
        correlation_id="c-1",
        application_headers=wire.request_headers({"request_id": "r-1"}, "edge.echo.c-1"),
    )
    raw.delivery_info = {"routing_key": "echo.echo", "delivery_tag": 7}
    return channel.message_to_python(raw)


def consumer(queue_consumer: FakeQueueConsumer) -> resilient_rpc.ResilientRpcConsumer:
    rpc_consumer = resilient_rpc.ResilientRpcConsumer()
    rpc_consumer.container = FakeContainer()
    rpc_consumer.queue_consumer = queue_consumer
    rpc_consumer.queue = type("Queue", (), {"exchange": resilient_rpc.Exchange(wire.RPC_EXCHANGE)})
    return rpc_consumer


@pytest.mark.parametrize(
    ("reply_to", "exchange"),
    [("amq.rabbitmq.reply-to.g1h2AA5y", ""), ("rpc.reply-proxy-8b1d", "nameko-rpc")],
)  # fmt: skip
def test_a_reply_goes_on_the_request_s_channel_then_the_request_is_acked(
    reply_to: str, exchange: str
) -> None:
    connection = RecordingConnection()
    message = request(reply_to, connection)
    queue_consumer = FakeQueueConsumer()

    result = consumer(queue_consumer).handle_result(message, {"echo": 1}, None)

    assert result == ({"echo": 1}, None)
    [sent] = connection.published()
    assert (sent["exchange"], sent["routing_key"]) == (exchange, reply_to)
    assert sent["mandatory"] is False
    reply = sent["message"]
    assert reply.properties["correlation_id"] == "c-1"
    assert reply.properties["delivery_mode"] == 1  # non-persistent
    assert reply.properties["content_type"] == "application/json"
    assert wire.decode_reply(reply.body) == {"echo": 1}
    assert queue_consumer.acked == [message]  # acked only after the reply was written


def test_an_unserializable_result_is_replied_as_an_error_and_reported() -> None:
    connection = RecordingConnection()
    message = request("amq.rabbitmq.reply-to.x", connection)

    result, exc_info = consumer(FakeQueueConsumer()).handle_result(message, object(), None)

    assert result is None and exc_info is not None
    [sent] = connection.published()
    with pytest.raises(RemoteError, match="UnserializableValueError"):
        wire.decode_reply(sent["message"].body)


@pytest.mark.parametrize(
    "broken",
    [BrokenPipeError(32, "Broken pipe"), amqp.exceptions.ConnectionForced("closed"),
     ConnectionResetError("reset")],
)  # fmt: skip
def test_a_broker_gone_mid_reply_is_logged_not_raised(broken: BaseException, caplog) -> None:
    connection = RecordingConnection()
    connection.fail_with = broken
    message = request("amq.rabbitmq.reply-to.x", connection)
    queue_consumer = FakeQueueConsumer()

    assert consumer(queue_consumer).handle_result(message, 5, None) == (5, None)

    assert "reply to echo.echo not sent, broker unreachable" in caplog.text
    assert queue_consumer.acked == [message]  # ack still tried: the channel may live on


def test_a_request_whose_channel_closed_is_neither_replied_nor_fatal(caplog) -> None:
    connection = RecordingConnection()
    message = request("amq.rabbitmq.reply-to.x", connection)
    message.channel.connection = None
    queue_consumer = FakeQueueConsumer(fail_with=BrokenPipeError(32, "Broken pipe"))

    assert consumer(queue_consumer).handle_result(message, 5, None) == (5, None)

    assert connection.frames == []
    assert "reply to echo.echo not sent" in caplog.text
    assert "request not acked, broker unreachable" in caplog.text


def test_with_publisher_confirms_on_the_channel_the_reply_goes_through_nameko_s_responder(
    monkeypatch,
) -> None:
    built: list[dict[str, Any]] = []

    class RecordingResponder(resilient_rpc.ReplyResponder):
        def send_response(self, result: Any, exc_info: Any) -> tuple[Any, Any]:
            built.append({"exchange": self.exchange.name, "serializer": self.serializer,
                          "amqp_uri": self.amqp_uri, "message": self.message})  # fmt: skip
            return result, exc_info

    monkeypatch.setattr(resilient_rpc, "ReplyResponder", RecordingResponder)
    connection = RecordingConnection()
    connection.confirm_publish = True
    message = request("rpc.reply-standalone_rpc_proxy-8b1d", connection)
    queue_consumer = FakeQueueConsumer()

    assert consumer(queue_consumer).handle_result(message, 3, None) == (3, None)

    assert connection.frames == []  # nothing written on the consumer's own channel
    uri = FakeContainer.config["AMQP_URI"]
    assert built == [
        {"exchange": "nameko-rpc", "serializer": "json", "amqp_uri": uri, "message": message}
    ]
    assert queue_consumer.acked == [message]
    publisher = resilient_rpc.ReplyResponder.publisher_cls
    assert (publisher.use_confirms, publisher.delivery_mode) == (False, 1)


class Echo:
    name = "echo"

    @resilient_rpc.rpc
    def echo(self, value: Any, *, suffix: str = "") -> Any:
        return value

    @resilient_rpc.rpc
    def ping(self) -> None:
        return None


def bound_entrypoint(method_name: str) -> resilient_rpc.ResilientRpc:
    container = ServiceContainer(Echo, {"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/none"})
    [entrypoint] = [e for e in container.entrypoints if e.method_name == method_name]
    entrypoint.setup()  # builds the signature once; connects to nothing
    return entrypoint


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "refused"),
    [
        ("echo", (1,), {}, None),
        ("echo", (), {"value": 1, "suffix": "!"}, None),
        ("echo", (), {}, r"^echo\(\): missing a required argument: 'value'$"),
        ("echo", (1,), {"colour": "red"}, r"^echo\(\): got an unexpected keyword argument 'c"),
        ("echo", (1, "!"), {}, r"^echo\(\): too many positional arguments$"),
        ("ping", (), {}, None),
        ("ping", (1,), {}, r"^ping\(\): too many positional arguments$"),
    ],
)  # fmt: skip
def test_arguments_are_checked_against_the_signature_built_in_setup(
    method: str, args: tuple, kwargs: dict, refused: str | None
) -> None:
    entrypoint = bound_entrypoint(method)
    if refused is None:
        entrypoint.check_signature(args, kwargs)
    else:
        with pytest.raises(IncorrectSignature, match=refused):
            entrypoint.check_signature(args, kwargs)
