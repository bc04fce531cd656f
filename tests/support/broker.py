"""The shared RabbitMQ as tests use it: private vhosts, raw publishes, queue depths."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import amqp
import amqp.exceptions
import requests
from kombu import Connection, Producer
from kombu.utils.url import parse_url
from nameko.events import get_event_exchange

from launch import broker_accounts

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


Action = Callable[[amqp.Channel], object]


class Broker:
    """A fresh vhost with every component's account provisioned; deleted afterwards."""

    def __init__(self, run_dir: Path) -> None:
        self.vhost = Vhost()  # also grants guest, the administrator the controls use
        self.vhost.create()
        self.uris = broker_accounts.provision(RABBIT_API, self.vhost.name, run_dir)

    def close(self) -> None:
        broker_accounts.deprovision(RABBIT_API, self.vhost.name)
        self.vhost.delete()

    def attempt(self, component: str, action: Action) -> int | None:
        return attempt(self.vhost.uri if component == "admin" else self.uris[component], action)


def attempt(uri: str, action: Action) -> int | None:
    """Run `action` on a channel logged in by `uri`: None if the broker allowed it, else the
    AMQP reply code it closed the channel with (403 = ACCESS_REFUSED)."""
    url = parse_url(uri)
    connection = amqp.Connection(
        f"{url['hostname']}:{url['port']}",
        userid=url["userid"],
        password=url["password"],
        virtual_host=url["virtual_host"],
        confirm_publish=True,  # a refused publish then fails here, not later
    )
    connection.connect()
    try:
        action(connection.channel())
        return None
    except amqp.exceptions.AMQPError as error:
        return error.code
    finally:
        connection.collect()


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
