"""`rpc` entrypoint whose worker survives a broker that vanishes while the reply is sent."""

from __future__ import annotations

import logging
from typing import Any

import amqp.exceptions
import kombu.exceptions
from nameko.rpc import Rpc, RpcConsumer

log = logging.getLogger(__name__)

# What publishing a reply raises when RabbitMQ is down or restarting.
BROKER_ERRORS = (OSError, kombu.exceptions.KombuError, amqp.exceptions.AMQPError)


class ResilientRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer lets a failed reply publish escape the worker thread, and nameko
    then kills the whole container: one RabbitMQ restart during an RPC left `nameko run`
    dead or hung (found by tests/reliability/test_broker_restart.py). The caller cannot get
    this reply anyway (its reply queue went with the broker connection; the edge answers
    503), so log it, ack the request if its channel still lives, and keep serving."""

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        try:
            return super().handle_result(message, result, exc_info)
        except BROKER_ERRORS as error:
            log.warning(
                "reply to %s not sent, broker unreachable: %s",
                message.delivery_info.get("routing_key"),
                error,
            )
            # Guarded by nameko: a no-op when the connection is gone (the broker then
            # redelivers the request, and the work it does is idempotent or refused).
            self.queue_consumer.ack_message(message)
            return result, exc_info


class ResilientRpc(Rpc):
    rpc_consumer = ResilientRpcConsumer()


rpc = ResilientRpc.decorator
