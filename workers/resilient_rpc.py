"""`rpc` entrypoint whose worker survives a broker that vanishes while the reply is sent,
and whose replies skip the publisher confirm, the disk and the producer pool, and reach
callers using RabbitMQ's direct reply-to (the edge) as well as nameko's reply queues."""

from __future__ import annotations

import inspect
import logging
import sys
from typing import Any

import amqp
import amqp.exceptions
import amqp.spec
import kombu.exceptions
import kombu.serialization
from kombu import Exchange
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import IncorrectSignature, UnserializableValueError, serialize
from nameko.rpc import Responder, Rpc, RpcConsumer

log = logging.getLogger(__name__)

# RabbitMQ's direct reply-to pseudo-queue (the edge's client, http_edge/rpc.py, replies to
# it; the broker rewrites it to `amq.rabbitmq.reply-to.<token>`). Such a reply must go to
# the default exchange; nameko's own callers bind reply queues to `nameko-rpc`.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

# What publishing or settling a message raises when RabbitMQ is down or restarting.
BROKER_ERRORS = (OSError, kombu.exceptions.KombuError, amqp.exceptions.AMQPError)


def publish(
    channel: amqp.Channel,
    message: amqp.Message,
    exchange: str,
    routing_key: str,
    mandatory: bool = False,
) -> None:
    """`channel.basic_publish` without py-amqp's `drain_events(timeout=0)` before it.

    py-amqp reads the socket before every publish, to handle a pending `connection.blocked`
    notice early. Neither caller here needs that: both read the connection right after
    publishing (the edge waits for the reply, and a worker's consumer reads all the time),
    and neither registers a blocked callback. On a worker's consumer connection that read
    ran in the worker greenthread, and it dispatched other requests' deliveries from
    inside a reply. It cost about a tenth of a trivial call's CPU in a worker
    (bench/results/profiles/2026-11-25-session4-echo-worker-before.txt; docs/performance.md,
    "The relay's own Python").
    """
    if channel.connection is None:
        raise amqp.exceptions.RecoverableConnectionError("publish: channel is closed")
    channel.send_method(
        amqp.spec.Basic.Publish, "Bssbb", (0, exchange, routing_key, mandatory, False), message
    )


class ReplyPublisher(Publisher):
    # A reply goes to the caller's exclusive queue, which dies with its connection: a
    # confirm or a persistent copy cannot save a reply the broker loses (the caller times
    # out either way), and confirming every reply was a fifth of users_v1's CPU (bench/).
    use_confirms = False
    delivery_mode = NON_PERSISTENT


class ReplyResponder(Responder):
    publisher_cls = ReplyPublisher


DEFAULT_EXCHANGE = Exchange("")


class ResilientRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer lets a failed reply publish escape the worker thread, and nameko
    then kills the whole container: one RabbitMQ restart during an RPC left `nameko run`
    dead or hung (found by tests/reliability/test_broker_restart.py). The caller cannot get
    this reply anyway (its reply queue went with the broker connection; the edge answers
    503), so log it, ack the request if its channel still lives, and keep serving."""

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        try:
            return self._reply(message, result, exc_info)
        except BROKER_ERRORS as error:
            log.warning(
                "reply to %s not sent, broker unreachable: %s",
                message.delivery_info.get("routing_key"),
                error,
            )
            # The broker redelivers an unacked request, and the work it does is idempotent
            # or refused. nameko only skips the ack on a connection it knows is closed; a
            # socket that just broke raises here (BrokenPipeError) and would kill the
            # container all the same (seen in tests/reliability/test_broker_restart.py).
            try:
                self.queue_consumer.ack_message(message)
            except BROKER_ERRORS as ack_error:
                log.warning("request not acked, broker unreachable: %s", ack_error)
            return result, exc_info

    def _reply(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        connection = message.channel.connection
        if connection is None:  # the request's channel closed while the worker ran
            raise amqp.exceptions.RecoverableConnectionError("request channel is closed")
        if connection.confirm_publish:
            # Publishing on the consumer's channel would wait for a confirm there, racing
            # the consumer's own reads: use nameko's way (a pooled producer connection).
            return self._reply_via_producer(message, result, exc_info)
        exchange = self._reply_exchange(message)
        result, exc_info = publish_reply(message, result, exc_info, exchange.name)
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def _reply_exchange(self, message: Any) -> Exchange:
        if message.properties["reply_to"].startswith(DIRECT_REPLY_TO):
            return DEFAULT_EXCHANGE
        return self.queue.exchange  # nameko's RPC exchange, built once in setup()

    def _reply_via_producer(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        # nameko's RpcConsumer.handle_result, with the reply responder swapped.
        config = self.container.config
        responder = ReplyResponder(
            config[AMQP_URI_CONFIG_KEY],
            self._reply_exchange(message),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


def publish_reply(message: Any, result: Any, exc_info: Any, exchange: str) -> tuple[Any, Any]:
    """nameko's `Responder.send_response`, published on the channel the request came in on.

    Same payload and properties (`{"result", "error"}`, the request's serializer and
    correlation id, to `reply_to` on `exchange`: the RPC exchange, or the default one for
    direct reply-to), without a producer borrowed from a pool, kombu's retry wrapper and a
    serialization check done twice: in users_v1 that machinery cost as much CPU as the
    socket write itself (bench/results/profiles/). Worker greenthreads already write acks
    on this channel (nameko's ack_message); py-amqp writes each frame set under its own
    lock, so replies from concurrent workers never interleave.
    """
    error = serialize(exc_info[1]) if exc_info is not None else None
    serializer = kombu.serialization.registry.type_to_name[message.properties["content_type"]]
    try:
        content_type, encoding, body = kombu.serialization.dumps(
            {"result": result, "error": error}, serializer
        )
    except Exception:  # noqa: BLE001 - nameko's rule: an unserializable result is an error
        exc_info = sys.exc_info()
        error = serialize(UnserializableValueError(result))
        result = None
        content_type, encoding, body = kombu.serialization.dumps(
            {"result": None, "error": error}, serializer
        )
    channel = message.channel
    reply = channel.prepare_message(
        body,
        content_type=content_type,
        content_encoding=encoding,
        properties={
            "correlation_id": message.properties.get("correlation_id"),
            "delivery_mode": NON_PERSISTENT,
        },
    )
    publish(channel, reply, exchange, message.properties["reply_to"])
    return result, exc_info


class ResilientRpc(Rpc):
    rpc_consumer = ResilientRpcConsumer()

    def setup(self) -> None:
        super().setup()
        self._signature = inspect.signature(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args: tuple, kwargs: dict) -> None:
        # nameko runs inspect.getcallargs on every call, which rebuilds the method's
        # signature each time (~5 % of a trivial call's CPU); it is built once in setup().
        try:
            self._signature.bind(None, *args, **kwargs)  # None: the unbound method's self
        except TypeError as exc:
            raise IncorrectSignature(f"{self.method_name}(): {exc}") from None


rpc = ResilientRpc.decorator
