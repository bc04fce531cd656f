"""The services over real RabbitMQ and nx-27017: RPC, events, uniqueness under concurrency."""

import random
import uuid

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from tests.support.audit import assert_invariants
from tests.support.data import ADDRESS, ITEMS
from tests.support.polling import wait_until
from workers.exceptions import EmailTaken, UnknownUser, UserNotFound, ValidationFailed

pytestmark = pytest.mark.integration


def unique_email(tag="user"):
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def order_for(user):
    return {
        "userId": user["userId"],
        "items": ITEMS,
        "userEmails": user["emails"],
        "deliveryAddress": user["deliveryAddress"],
        "orderStatus": "under process",
    }


def test_rpc_round_trip_with_entrypoint_hooks(stack):
    with entrypoint_hook(stack["users_v2"], "create") as create:
        user = create({"emails": [unique_email()], "deliveryAddress": ADDRESS})
    with entrypoint_hook(stack["users_v1"], "get") as get:
        assert get(user["userId"]) == user
    with entrypoint_hook(stack["orders"], "create") as create_order:
        order = create_order(order_for(user))
    with entrypoint_hook(stack["orders"], "get") as get_order:
        assert get_order(order["orderId"])["userId"] == user["userId"]


def test_typed_errors_cross_the_broker(stack, rpc):
    with pytest.raises(UserNotFound):
        rpc.users_v1.get(str(uuid.uuid4()))
    with pytest.raises(ValidationFailed) as error:
        rpc.users_v2.create({"emails": ["bad"]})
    assert set(error.value.errors) == {"emails", "deliveryAddress"}
    with pytest.raises(UnknownUser):
        rpc.orders.create(order_for({"userId": str(uuid.uuid4()), "emails": [unique_email()],
                                     "deliveryAddress": ADDRESS}))  # fmt: skip


def test_one_update_reaches_all_of_the_users_orders(stack, rpc):
    user = rpc.users_v1.create({"emails": [unique_email()], "deliveryAddress": ADDRESS})
    orders = [rpc.orders.create(order_for(user)) for _ in range(4)]
    new_address = {**ADDRESS, "street": "99 New Rd"}
    new_email = unique_email("moved")
    with entrypoint_waiter(stack["orders"], "handle_user_updated_v1", timeout=10):
        before, after = rpc.users_v1.update(
            user["userId"], {"emails": [new_email], "deliveryAddress": new_address}
        )
    assert before["version"] + 1 == after["version"]
    for order in orders:
        stored = rpc.orders.get(order["orderId"])
        assert stored["userEmails"] == [new_email]
        assert stored["deliveryAddress"] == new_address


def test_updates_from_v2_are_handled_too(stack, rpc):
    user = rpc.users_v2.create({"emails": [unique_email()], "deliveryAddress": ADDRESS})
    order = rpc.orders.create(order_for(user))
    with entrypoint_waiter(stack["orders"], "handle_user_updated_v2", timeout=10):
        rpc.users_v2.update(user["userId"], {"emails": [unique_email("v2")]})
    assert rpc.orders.get(order["orderId"])["userEmails"] != user["emails"]


def test_redelivered_and_reordered_events_leave_the_latest_state(stack, rpc, service_config):
    user = rpc.users_v2.create({"emails": [unique_email()], "deliveryAddress": ADDRESS})
    order = rpc.orders.create(order_for(user))
    versions = list(range(2, 12))
    events = [
        {"userId": user["userId"], "userEmails": [f"v{v}@example.com"],
         "deliveryAddress": {**ADDRESS, "street": f"{v} Version St"}, "version": v,
         "updatedAt": "2026-01-31T12:00:00.000Z"}
        for v in versions
    ]  # fmt: skip
    deliveries = events + random.Random(1).sample(events, 5)  # duplicates
    random.Random(2).shuffle(deliveries)
    dispatch = event_dispatcher(service_config)
    for body in deliveries:
        dispatch(random.choice(["users_v1", "users_v2"]), "user_updated", body)

    def latest_applied():
        return rpc.orders.get(order["orderId"])["userEmails"] == ["v11@example.com"]

    wait_until(latest_applied)
    eventlet.sleep(0.5)  # let any straggling older event arrive: it must not win
    stored = rpc.orders.get(order["orderId"])
    assert stored["userEmails"] == ["v11@example.com"]
    assert stored["deliveryAddress"]["street"] == "11 Version St"


def test_fifty_concurrent_creates_with_one_email(stack, service_config, database):
    email = unique_email("race")
    payload = {"emails": [email], "deliveryAddress": ADDRESS}

    def create(index):
        # one proxy per green thread: a proxy must never be shared between threads
        with ClusterRpcProxy(service_config, timeout=30) as proxy:
            service = proxy.users_v1 if index % 2 else proxy.users_v2
            try:
                return service.create(payload)
            except EmailTaken:
                return "conflict"

    results = list(eventlet.GreenPool(50).imap(create, range(50)))
    winners = [r for r in results if r != "conflict"]
    assert len(winners) == 1
    assert results.count("conflict") == 49
    assert_invariants(database, [winners[0]["userId"]])


def test_concurrent_updates_of_one_user_agree_with_its_orders(
    stack, service_config, rpc, database
):
    user = rpc.users_v1.create({"emails": [unique_email()], "deliveryAddress": ADDRESS})
    orders = [rpc.orders.create(order_for(user)) for _ in range(3)]

    def update(index):
        with ClusterRpcProxy(service_config, timeout=30) as proxy:
            service = proxy.users_v1 if index % 2 else proxy.users_v2
            return service.update(
                user["userId"], {"deliveryAddress": {**ADDRESS, "street": f"{index} Race St"}}
            )

    results = list(eventlet.GreenPool(20).imap(update, range(20)))
    assert sorted(after["version"] for _, after in results) == list(range(2, 22))
    final = rpc.users_v2.get(user["userId"])
    assert final["version"] == 21

    def orders_agree():
        return all(
            rpc.orders.get(o["orderId"])["deliveryAddress"] == final["deliveryAddress"]
            for o in orders
        )

    wait_until(orders_agree)
    assert_invariants(database, [user["userId"]])
