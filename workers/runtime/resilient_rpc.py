"""`rpc` entrypoint that survives a broker vanishing mid-reply; replies skip the confirm, the
disk and the producer pool, and reach direct reply-to callers (the edge) and nameko's alike."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import amqp.exceptions
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
from nameko.exceptions import IncorrectSignature
from nameko.rpc import ReplyListener, Responder, Rpc, RpcConsumer

from common.wire import BROKER_ERRORS, encode_reply, is_direct_reply_to, publish
from workers.exceptions import RequestRedelivered
from workers.runtime.graceful import GracefulQueueConsumer
from workers.runtime.queue_types import CLASSIC, declare_checked, rpc_queue_arguments, with_type

log = logging.getLogger(__name__)

# nameko config, like nameko's DECLARE_EVENT_EXCHANGES: False where provisioning declared
# `nameko-rpc` (launch/broker_accounts), so no worker needs configure permission on it.
DECLARE_RPC_EXCHANGE_CONFIG_KEY = "DECLARE_RPC_EXCHANGE"


class ReplyPublisher(Publisher):
    # A reply goes to the caller's exclusive queue, which dies with its connection: a
    # confirm or a persistent copy cannot save a reply the broker loses (the caller times
    # out either way), and confirming every reply cost a fifth of users_v1's CPU.
    use_confirms = False
    delivery_mode = NON_PERSISTENT


class ReplyResponder(Responder):
    publisher_cls = ReplyPublisher


DEFAULT_EXCHANGE = Exchange("")


def skip_rpc_exchange_declare(extension: Any) -> None:
    """After nameko's setup: leave `nameko-rpc` undeclared if the config says so."""
    if extension.container.config.get(DECLARE_RPC_EXCHANGE_CONFIG_KEY) is False:
        extension.queue.exchange.no_declare = True  # kombu then only binds to it


class RpcReplyListener(ReplyListener):
    """nameko's reply queue for an RpcProxy, honouring DECLARE_RPC_EXCHANGE; always classic."""

    # The same (graceful) consumer as the service's RPC entrypoints: one connection, as before.
    queue_consumer = GracefulQueueConsumer()

    def setup(self) -> None:
        super().setup()
        skip_rpc_exchange_declare(self)
        with_type(self.queue, CLASSIC)


class ResilientRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer lets a failed reply publish escape the worker thread, and nameko
    then kills the whole container: one RabbitMQ restart during an RPC left `nameko run`
    dead or hung (found by tests/reliability/test_broker_restart.py). The caller cannot get
    this reply anyway (its reply queue went with the broker connection; the edge answers
    503), so log it, ack the request if its channel still lives, and keep serving."""

    queue_consumer = GracefulQueueConsumer()  # in-flight replies survive SIGTERM

    def setup(self) -> None:
        super().setup()
        skip_rpc_exchange_declare(self)
        # `rpc-<service>` is replicated (quorum, the default): a lost node must not lose
        # requests or the consumer; a single-broker deployment may choose classic.
        with_type(self.queue, rpc_queue_arguments(self.container.config))
        declare_checked(self.container.config[AMQP_URI_CONFIG_KEY], self.queue)

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
        if is_direct_reply_to(message.properties["reply_to"]):
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

    Same payload and properties, without a pooled producer, kombu's retry wrapper and a second
    serialization, which cost users_v1 as much CPU as the socket write (docs/performance.md).
    Worker greenthreads already ack on this channel; py-amqp writes each frame set under a
    lock, so replies from concurrent workers never interleave.
    """
    reply = encode_reply(result, exc_info, message.properties["content_type"])
    channel = message.channel
    prepared = channel.prepare_message(
        reply.body,
        content_type=reply.content_type,
        content_encoding=reply.content_encoding,
        properties={
            "correlation_id": message.properties.get("correlation_id"),
            "delivery_mode": NON_PERSISTENT,
        },
    )
    publish(channel, prepared, exchange, message.properties["reply_to"])
    return reply.result, reply.exc_info


class ResilientRpc(Rpc):
    """nameko's `rpc`, plus `idempotent`: unless a method says it is (reads, ping), a
    redelivered request is answered RequestRedelivered (503) instead of run. RabbitMQ
    redelivers an unacked request when its consumer's node or connection went away, and the
    first run may have committed before its reply was lost (docs/clustering.md)."""

    rpc_consumer = ResilientRpcConsumer()

    def __init__(self, *args: Any, idempotent: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idempotent = idempotent

    def handle_message(self, body: Any, message: Any) -> None:
        # Raised here, RpcConsumer.handle_message replies with it (and acks).
        if not self.idempotent and message.delivery_info.get("redelivered"):
            raise RequestRedelivered()
        super().handle_message(body, message)

    def setup(self) -> None:
        super().setup()
        self._signature = inspect.signature(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args: tuple, kwargs: dict) -> None:
        # nameko's inspect.getcallargs rebuilds the method's signature on every call; it is
        # built once in setup() instead (docs/performance.md).
        try:
            self._signature.bind(None, *args, **kwargs)  # None: the unbound method's self
        except TypeError as exc:
            raise IncorrectSignature(f"{self.method_name}(): {exc}") from None


rpc = ResilientRpc.decorator
