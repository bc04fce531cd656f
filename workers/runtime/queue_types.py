"""Queue types, declared explicitly: quorum for every durable queue a service consumes (RPC,
events, dead letters), classic for nameko's per-process reply queues (docs/clustering.md).

Explicit arguments, not a vhost default queue type: the code alone decides, whatever the
vhost was created with, and a queue that exists with another type fails loudly at startup.
"""

from __future__ import annotations

from typing import Any

import amqp.exceptions
from kombu import Connection, Queue

QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}
# Reply queues are per process and expire (x-expires): replicating them buys nothing, and a
# vhost whose default type is quorum would otherwise make them quorum too (FACTS.md).
CLASSIC: dict[str, Any] = {"x-queue-type": "classic"}
MIGRATION_DOC = "docs/clustering.md#upgrading-a-broker-with-classic-queues"
# `rpc-<service>` may be classic on a single broker: a quorum queue's Raft log costs each
# call ~1 ms p50 more here (docs/performance.md); in a cluster only quorum survives a node.
RPC_QUEUE_TYPE_CONFIG_KEY = "RPC_QUEUE_TYPE"
RPC_QUEUE_TYPES: dict[str, dict[str, Any]] = {"quorum": QUORUM, "classic": CLASSIC}


def rpc_queue_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """The queue type of a service's RPC request queue (config.yaml `RPC_QUEUE_TYPE`;
    quorum where the config does not say, e.g. nameko.testing's own config)."""
    name = str(config.get(RPC_QUEUE_TYPE_CONFIG_KEY) or "quorum").strip().lower()
    if name not in RPC_QUEUE_TYPES:
        raise ValueError(
            f"RPC_QUEUE_TYPE must be one of {', '.join(RPC_QUEUE_TYPES)}, not {name!r}"
        )
    return RPC_QUEUE_TYPES[name]


class QueueTypeMismatch(RuntimeError):
    """A queue exists with other arguments than this version declares (RabbitMQ: 406)."""


def with_type(queue: Queue, arguments: dict[str, Any]) -> Queue:
    """`queue` with `arguments` (a queue type) added to the arguments nameko gave it."""
    queue.queue_arguments = {**(queue.queue_arguments or {}), **arguments}
    return queue


def declare_checked(amqp_uri: str, *queues: Queue) -> None:
    """Declare `queues` (no bindings) before nameko's consumer does, so a classic queue left by
    an older version stops the service with a pointer to the migration instead of nameko's
    bare PRECONDITION_FAILED from inside its consumer thread."""
    with Connection(amqp_uri) as connection:
        for queue in queues:
            unbound = Queue(
                queue.name, durable=queue.durable, queue_arguments=queue.queue_arguments
            )
            try:
                unbound(connection.channel()).declare()
            except amqp.exceptions.PreconditionFailed as error:
                raise QueueTypeMismatch(
                    f"queue {queue.name!r} exists with other arguments than "
                    f"{queue.queue_arguments} ({error.reply_text}); an older version "
                    f"declared it classic: migrate it as {MIGRATION_DOC} describes"
                ) from None
