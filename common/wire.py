"""nameko's RPC conventions on the AMQP wire: what the edge's client and the workers share.

Verified against nameko 2.14.1, py-amqp 5.4.2 and kombu 5.7.0 (tests/unit/test_wire_pins.py).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import amqp
import amqp.exceptions
import amqp.spec
import kombu.exceptions
import kombu.serialization
from kombu.utils import json as kombu_json
from nameko.constants import CALL_ID_STACK_CONTEXT_KEY, HEADER_PREFIX
from nameko.exceptions import UnserializableValueError, deserialize, serialize

RPC_EXCHANGE = "nameko-rpc"  # nameko's default (config key RPC_EXCHANGE)
CONTENT_TYPE = "application/json"  # what nameko's default serializer, "json", sends
# RabbitMQ's direct reply-to pseudo-queue: the broker rewrites it to
# `amq.rabbitmq.reply-to.<token>`, and a reply to it goes to the default exchange.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

# A py-amqp connection that raised one of these is unusable (as opposed to a worker's "no").
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, amqp.exceptions.AMQPError)
# What publishing or settling a message through kombu raises when RabbitMQ is down or restarting.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    kombu.exceptions.KombuError,
    amqp.exceptions.AMQPError,
)


def publish(
    channel: amqp.Channel,
    message: amqp.Message,
    exchange: str,
    routing_key: str,
    mandatory: bool = False,
) -> None:
    """`channel.basic_publish` without py-amqp's socket read before it.

    py-amqp drains the connection before each publish to see a `connection.blocked` early;
    both callers read right after publishing anyway, and on a worker that read dispatched
    other requests' deliveries from inside a reply (docs/performance.md).
    """
    if channel.connection is None:
        raise amqp.exceptions.RecoverableConnectionError("publish: channel is closed")
    channel.send_method(
        amqp.spec.Basic.Publish, "Bssbb", (0, exchange, routing_key, mandatory, False), message
    )


def request_body(args: tuple | list, kwargs: Mapping[str, Any]) -> str:
    """The body of an RPC request, as nameko's `Rpc.handle_message` reads it."""
    return kombu_json.dumps({"args": args, "kwargs": kwargs})


def request_headers(context: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    """AMQP headers carrying the caller's context as nameko's `HeaderDecoder` unpacks it."""
    headers = {f"{HEADER_PREFIX}.{key}": value for key, value in context.items()}
    headers[f"{HEADER_PREFIX}.{CALL_ID_STACK_CONTEXT_KEY}"] = [call_id]
    return headers


def is_direct_reply_to(reply_to: str) -> bool:
    """True if a request asks for its reply by direct reply-to (to the default exchange)."""
    return reply_to.startswith(DIRECT_REPLY_TO)


class Reply(NamedTuple):
    """An encoded reply, and the result and exc_info the worker reports after sending it."""

    content_type: str
    content_encoding: str
    body: bytes | str
    result: Any
    exc_info: Any


def encode_reply(result: Any, exc_info: Any, content_type: str) -> Reply:
    """nameko's reply `{"result", "error"}`, serialized like the request it answers.

    As in nameko's `Responder.send_response`, a result the serializer refuses becomes an
    `UnserializableValueError` reply, and that error becomes the worker's exc_info.
    """
    error = serialize(exc_info[1]) if exc_info is not None else None
    serializer = kombu.serialization.registry.type_to_name[content_type]
    try:
        encoded = kombu.serialization.dumps({"result": result, "error": error}, serializer)
    except Exception:  # noqa: BLE001 - nameko's rule: an unserializable result is an error
        exc_info = sys.exc_info()
        error = serialize(UnserializableValueError(result))
        result = None
        encoded = kombu.serialization.dumps({"result": None, "error": error}, serializer)
    content_type, encoding, body = encoded
    return Reply(content_type, encoding, body, result, exc_info)


def decode_reply(body: bytes | str) -> Any:
    """The result a JSON reply carries, or the remote error it carries raised."""
    reply = kombu_json.loads(body)
    if reply.get("error"):
        raise deserialize(reply["error"])
    return reply.get("result")
