"""The shared RabbitMQ as tests use it: private vhosts, raw publishes, queue depths."""

from __future__ import annotations

import os
import uuid
from typing import Any

import requests
from kombu import Connection, Producer
from nameko.events import get_event_exchange

RABBIT_API = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
RABBIT_HOST = os.environ.get("RABBIT_HOST", "127.0.0.1:5672")


def rabbit_port() -> int:
    return int(RABBIT_HOST.rsplit(":", 1)[1])


class Vhost:
    """A private vhost on the real broker, so tests never touch another run's queues."""

    def __init__(self) -> None:
        self.name = f"test-{uuid.uuid4().hex[:10]}"

    def create(self) -> None:
        response = requests.put(f"{RABBIT_API}/api/vhosts/{self.name}", timeout=10)
        response.raise_for_status()
        response = requests.put(
            f"{RABBIT_API}/api/permissions/{self.name}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            timeout=10,
        )
        response.raise_for_status()

    def delete(self) -> None:
        requests.delete(f"{RABBIT_API}/api/vhosts/{self.name}", timeout=10)

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@{RABBIT_HOST}/{self.name}"


def publish_raw(amqp_uri: str, service: str, bodies: list[Any], **properties: Any) -> None:
    """Publish like nameko's EventDispatcher (same exchange, routing key, persistent)."""
    exchange = get_event_exchange(service, {})
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.default_channel, exchange=exchange)
        for body in bodies:
            producer.publish(body, routing_key="user_updated", delivery_mode=2, **properties)


def queue_depth(amqp_uri: str, queue: str) -> int:
    """Ready messages in a queue, by a passive declare (no management API needed)."""
    with Connection(amqp_uri) as connection:
        _, count, _ = connection.default_channel.queue_declare(queue=queue, passive=True)
        return count
