"""`rpc` entrypoint whose worker survives a broker that vanishes while the reply is sent,
and whose replies skip the publisher confirm and the disk."""

from __future__ import annotations

import logging
from typing import Any

import amqp.exceptions
import kombu.exceptions
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange

log = logging.getLogger(__name__)

# What publishing a reply raises when RabbitMQ is down or restarting.
BROKER_ERRORS = (OSError, kombu.exceptions.KombuError, amqp.exceptions.AMQPError)


class ReplyPublisher(Publisher):
    # A reply goes to the caller's exclusive queue, which dies with its connection: a
    # confirm or a persistent copy cannot save a reply the broker loses (the caller times
    # out either way), and confirming every reply was a fifth of users_v1's CPU (bench/).
    use_confirms = False
    delivery_mode = NON_PERSISTENT


class ReplyResponder(Responder):
    publisher_cls = ReplyPublisher


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
        # nameko's RpcConsumer.handle_result, with the reply responder swapped.
        config = self.container.config
        responder = ReplyResponder(
            config[AMQP_URI_CONFIG_KEY],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class ResilientRpc(Rpc):
    rpc_consumer = ResilientRpcConsumer()


rpc = ResilientRpc.decorator
