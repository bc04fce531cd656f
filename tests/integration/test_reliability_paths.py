"""Outbox relay, dead-lettering and database outage against the real broker."""

import json
import uuid
from datetime import timedelta

import pytest
import requests
from kombu import Connection
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from tests.support.broker import RABBIT_API
from tests.support.data import ADDRESS, ITEMS
from tests.support.net import free_port
from tests.support.polling import wait_until
from workers.exceptions import StorageUnavailable
from workers.orders import OrdersService
from workers.runtime.documents import utcnow
from workers.users_v2 import UsersV2

pytestmark = pytest.mark.integration


def new_user(rpc):
    email = f"r-{uuid.uuid4().hex[:10]}@example.com"
    user = rpc.users_v2.create({"emails": [email], "deliveryAddress": ADDRESS})
    order = rpc.orders.create(
        {
            "userId": user["userId"],
            "items": ITEMS,
            "userEmails": user["emails"],
            "deliveryAddress": ADDRESS,
            "orderStatus": "shipping",
        }  # fmt: skip
    )
    return user, order


def test_committed_update_whose_publish_was_lost_is_relayed(stack, rpc, database):
    user, order = new_user(rpc)
    # What a crash between the commit and the publish leaves behind: a newer version,
    # flagged pending, and no event on the broker.
    database.users.update_one(
        {"userId": user["userId"]},
        {"$set": {"emails": ["relayed@example.com"],
                  "eventPendingSince": utcnow() - timedelta(seconds=10)},
         "$inc": {"version": 1}},
    )  # fmt: skip
    wait_until(lambda: rpc.orders.get(order["orderId"])["userEmails"] == ["relayed@example.com"])
    wait_until(
        lambda: "eventPendingSince" not in database.users.find_one({"userId": user["userId"]})
    )


def queue_depth(vhost, queue):
    response = requests.get(f"{RABBIT_API}/api/queues/{vhost}/{queue}", timeout=5)
    response.raise_for_status()
    return response.json().get("messages", 0)


def test_poison_message_is_dead_lettered_and_later_events_flow(stack, rpc, service_config):
    user, order = new_user(rpc)
    dispatch = event_dispatcher(service_config)
    dispatch("users_v2", "user_updated", {"userId": user["userId"], "version": "not a number"})
    dispatch("users_v2", "user_updated", "not even an object")
    good = {
        "userId": user["userId"],
        "userEmails": ["after-poison@example.com"],
        "deliveryAddress": ADDRESS,
        "version": 9,
        "updatedAt": "2026-01-31T12:00:00.000Z",
    }
    dispatch("users_v2", "user_updated", good)  # fmt: skip
    wait_until(lambda: rpc.orders.get(order["orderId"])["userEmails"] == [good["userEmails"][0]])
    dlq = "evt-users_v2-user_updated--orders.handle_user_updated_v2.dead-letter"
    vhost = service_config["vhost"]
    wait_until(lambda: queue_depth(vhost, dlq) == 2)
    with Connection(service_config["AMQP_URI"]) as connection:
        message = connection.default_channel.basic_get(queue=dlq, no_ack=True)
        assert json.loads(message.body) == {"userId": user["userId"], "version": "not a number"}


def test_unreachable_database_is_a_typed_error(container_factory, rabbit_config):
    dead = {**rabbit_config, "MONGO_URI": f"mongodb://127.0.0.1:{free_port()}",
            "MONGO_DB": "nowhere", "MONGO_TIMEOUT_MS": 300}  # fmt: skip
    for service_cls in (UsersV2, OrdersService):
        container_factory(service_cls, dead).start()
    with ClusterRpcProxy(dead, timeout=10) as rpc:
        with pytest.raises(StorageUnavailable):
            rpc.users_v2.ping()
        with pytest.raises(StorageUnavailable):
            rpc.users_v2.get(str(uuid.uuid4()))
        with pytest.raises(StorageUnavailable):
            rpc.orders.list("shipping")
