"""An event handler that retries transient failures and dead-letters everything else."""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from typing import Any

import eventlet
from kombu import Connection, Exchange, Queue
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventHandler

from common.wire import BROKER_ERRORS
from workers.exceptions import StorageUnavailable
from workers.runtime import metrics
from workers.runtime.graceful import GracefulQueueConsumer
from workers.runtime.queue_types import QUORUM, declare_checked, with_type

log = logging.getLogger(__name__)

# Pause before running an event again after a transient failure, so a dead database costs
# an attempt every half second instead of a hot loop.
RETRY_DELAY_SECONDS = 0.5
TRANSIENT_ERRORS = (StorageUnavailable,)


def dead_letter_names(queue_name: str) -> tuple[str, str]:
    return f"{queue_name}.dead-letter", f"{queue_name}.dead-letter"


class DeadLetteringQueueConsumer(GracefulQueueConsumer):
    """The graceful queue consumer, except that a body kombu cannot decode (invalid JSON, not
    UTF-8, unknown content type) is rejected to the queue's dead-letter exchange.

    kombu's default `on_decode_error` acks such a message: it would vanish with only a
    kombu log line, and SPEC §4 wants poison kept for inspection. Found by
    tests/reliability (poison message scenario).
    """

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        log.error(
            "undecodable event (%s, content type %r) rejected to the dead-letter queue: %s",
            message.delivery_info.get("routing_key"),
            message.content_type,
            exc,
            extra={"dead_letter": True, "routing_key": message.delivery_info.get("routing_key")},
        )
        exchange = str(message.delivery_info.get("exchange") or "")
        metrics.event_settled(
            self.container.service_name,
            exchange.removesuffix(".events"),  # nameko's event exchange: "<service>.events"
            str(message.delivery_info.get("routing_key")),
            metrics.DEAD_LETTERED,
        )
        with contextlib.suppress(ConnectionError):
            message.reject(requeue=False)


class ReliableEventHandler(EventHandler):
    """Acks only after the handler returned. A transient failure (database unreachable)
    runs the event again after a pause, still unacked; any other failure (malformed body,
    bug) rejects it to the queue's dead-letter queue with a log line, so one poison message
    never blocks the rest.

    The retry stays in this process instead of a requeue: a quorum queue counts every
    requeue as a delivery, and RabbitMQ 4.x dead-letters a message after 20 of them
    (default `x-delivery-limit`), so an outage of a few seconds would dead-letter events.
    Held events fill the prefetch window (max_workers), so nothing else is taken meanwhile.
    """

    # Only reliable handlers share this consumer: every queue it serves has a dead-letter
    # exchange, so rejecting an undecodable body there never loses it.
    queue_consumer = DeadLetteringQueueConsumer()

    def setup(self) -> None:
        super().setup()
        exchange_name, dlq_name = dead_letter_names(self.queue.name)
        dead_letters = Exchange(exchange_name, type="fanout", durable=True)
        self.dead_letter_queue = Queue(
            dlq_name, exchange=dead_letters, durable=True, queue_arguments=dict(QUORUM)
        )
        with_type(self.queue, {**QUORUM, "x-dead-letter-exchange": exchange_name})
        amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        declare_checked(amqp_uri, self.dead_letter_queue, self.queue)
        with Connection(amqp_uri) as connection:
            self.dead_letter_queue(connection.default_channel).declare()  # and its binding

    def handle_result(
        self, message: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        if exc_info is None:
            self._count(worker_ctx, metrics.APPLIED)
            self._settle(self.queue_consumer.ack_message, message)
        elif isinstance(exc_info[1], TRANSIENT_ERRORS):
            self._count(worker_ctx, metrics.RETRIED)
            self.container.spawn_managed_thread(
                partial(self._retry, worker_ctx.args[0], message),
                identifier=f"{type(self).__name__}.retry[{self.event_type}]",
            )
        else:
            self._count(worker_ctx, metrics.DEAD_LETTERED)
            log.error(
                "event %s rejected to %s: %s",
                self.event_type,
                self.dead_letter_queue.name,
                exc_info[1],
                extra={
                    "event_type": self.event_type,
                    "dead_letter_queue": self.dead_letter_queue.name,
                },
            )
            self._reject(message)
        return result, exc_info

    def _retry(self, body: Any, message: Any) -> None:
        eventlet.sleep(RETRY_DELAY_SECONDS)
        if not message.channel.connection:
            return  # the connection dropped: the broker redelivers the event by itself
        self.handle_message(body, message)

    def _count(self, worker_ctx: Any, outcome: str) -> None:
        event = worker_ctx.args[0] if worker_ctx.args else None
        metrics.event_settled(
            self.container.service_name, self.source_service, self.event_type, outcome, event
        )

    def _settle(self, settle: Any, message: Any) -> None:
        # nameko skips the ack on a connection it knows is closed, but a socket that just
        # broke (RabbitMQ restarting) raises BrokenPipeError here and nameko then kills the
        # whole container (seen in tests/reliability/test_broker_restart.py). The broker
        # redelivers an unsettled event and applying it is idempotent (version guard).
        try:
            settle(message)
        except BROKER_ERRORS as error:
            log.warning("event %s not settled, broker unreachable: %s", self.event_type, error)

    def _reject(self, message: Any) -> None:
        if message.channel.connection:
            # If the connection dropped, the broker reclaims the message by itself.
            with contextlib.suppress(ConnectionError):
                message.reject(requeue=False)


reliable_event_handler = ReliableEventHandler.decorator
