"""orders RPC methods and the user_updated handler with worker_factory and mongomock."""

import uuid
from unittest.mock import MagicMock, call

import pytest
from nameko.testing.services import worker_factory

from tests.support.data import address
from workers.exceptions import OrderNotFound, UnknownUser, UserNotFound, ValidationFailed
from workers.orders import OrdersService
from workers.orders.domain import MalformedEvent

ADDRESS = address()
NEW_ADDRESS = {**ADDRESS, "city": "Shelbyville"}
ITEMS = [{"itemId": "sku-1", "quantity": 2, "price": 9.5}]


def new_id() -> str:
    return str(uuid.uuid4())


def order_payload(user_id=None, status="under process", emails=("ann@example.com",)):
    body = {"items": ITEMS, "userEmails": list(emails), "deliveryAddress": ADDRESS,
            "orderStatus": status}  # fmt: skip
    if user_id:
        body["userId"] = user_id
    return body


def stored_user(user_id, version=1, emails=("ann@example.com",), address=ADDRESS):
    return {"userId": user_id, "version": version, "emails": list(emails),
            "deliveryAddress": address}  # fmt: skip


@pytest.fixture
def service(orders_repository):
    users = MagicMock()
    users.get.side_effect = lambda user_id: stored_user(user_id)
    return worker_factory(OrdersService, repository=orders_repository, users=users)


def event(user_id, version, emails=("new@example.com",), address=NEW_ADDRESS):
    return {"userId": user_id, "userEmails": list(emails), "deliveryAddress": address,
            "version": version, "updatedAt": "2026-01-31T12:00:00.000Z"}  # fmt: skip


def test_create_and_get(service):
    order = service.create(order_payload())
    assert uuid.UUID(order["orderId"]).version == 4
    assert order["items"] == [{"itemId": "sku-1", "quantity": 2, "price": 9.5}]
    assert order["createdAt"] == order["updatedAt"]
    assert "userVersion" not in order and "_id" not in order
    assert service.get(order["orderId"]) == order


def test_create_checks_the_user_by_rpc_and_re_reads_it_once_stored(service):
    user_id = new_id()
    service.create(order_payload(user_id))
    assert service.users.get.call_args_list == [call(user_id), call(user_id)]


def test_an_order_naming_a_user_carries_that_users_contact(service):
    user_id = new_id()
    service.users.get.side_effect = lambda _: stored_user(user_id, 3, ["cur@example.com"])
    order = service.create(order_payload(user_id, emails=["old@example.com"]))
    assert order["userEmails"] == ["cur@example.com"]
    # and is stamped with the version that contact came from: the v3 event is a no-op
    assert service.handle_user_updated_v1(event(user_id, 3, ["cur@example.com"])) == 0
    assert service.handle_user_updated_v1(event(user_id, 4)) == 1


def test_an_update_between_the_check_and_the_insert_is_caught_up(service):
    user_id = new_id()
    # the user moves from v1 to v2 (and its event is handled) while the order is created
    seen = iter([stored_user(user_id, 1, ["v1@example.com"]),
                 stored_user(user_id, 2, ["v2@example.com"], NEW_ADDRESS)])  # fmt: skip
    service.users.get.side_effect = lambda _: next(seen)
    order = service.create(order_payload(user_id))
    assert order["userEmails"] == ["v2@example.com"]
    assert service.get(order["orderId"])["deliveryAddress"] == NEW_ADDRESS
    assert service.handle_user_updated_v2(event(user_id, 2, ["v2@example.com"])) == 0


def test_create_with_unknown_user(service):
    service.users.get.side_effect = UserNotFound("x")
    with pytest.raises(UnknownUser) as error:
        service.create(order_payload(new_id()))
    assert "No user" in str(error.value)


def test_create_rejects_invalid_payload(service):
    with pytest.raises(ValidationFailed) as error:
        service.create({"items": [], "orderStatus": "lost", "orderId": "mine"})
    assert {"items", "orderStatus", "orderId", "userEmails", "deliveryAddress"} <= set(
        error.value.errors
    )
    service.users.get.assert_not_called()


def test_get_unknown_order(service):
    with pytest.raises(OrderNotFound):
        service.get(new_id())


def test_list_filters_by_status_and_user_and_pages(service):
    user_id = new_id()
    created = [service.create(order_payload(user_id, "shipping")) for _ in range(5)]
    # pages are ordered by createdAt, then orderId (ties within one millisecond)
    mine = sorted(created, key=lambda o: (o["createdAt"], o["orderId"]))
    service.create(order_payload(None, "shipping"))
    service.create(order_payload(user_id, "delivered"))
    assert len(service.list("shipping")) == 6
    assert [o["orderId"] for o in service.list("shipping", user_id=user_id)] == [
        o["orderId"] for o in mine
    ]
    first = service.list("shipping", limit=2, offset=0, user_id=user_id)
    second = service.list("shipping", limit=2, offset=2, user_id=user_id)
    assert [o["orderId"] for o in first + second] == [o["orderId"] for o in mine[:4]]
    assert service.list("under process") == []


@pytest.mark.parametrize(
    "args",
    [
        ("lost",),
        (None,),
        ("shipping", 0),
        ("shipping", 1001),
        ("shipping", 10, -1),
        ("shipping", 10, 0, "not-a-uuid"),
    ],  # fmt: skip
)
def test_list_rejects_bad_queries(service, args):
    with pytest.raises(ValidationFailed):
        service.list(*args)


def test_update_status(service):
    order = service.create(order_payload())
    before, after = service.update_status(order["orderId"], "shipping")
    assert (before["orderStatus"], after["orderStatus"]) == ("under process", "shipping")
    assert service.get(order["orderId"])["orderStatus"] == "shipping"
    with pytest.raises(ValidationFailed):
        service.update_status(order["orderId"], "teleported")
    with pytest.raises(OrderNotFound):
        service.update_status(new_id(), "shipping")


def test_update_details(service):
    order = service.create(order_payload())
    before, after = service.update_details(
        order["orderId"], {"userEmails": ["b@example.com"], "deliveryAddress": NEW_ADDRESS}
    )
    assert before["userEmails"] == ["ann@example.com"]
    assert after["userEmails"] == ["b@example.com"] and after["deliveryAddress"] == NEW_ADDRESS
    with pytest.raises(ValidationFailed):
        service.update_details(order["orderId"], {"orderStatus": "shipping"})
    with pytest.raises(OrderNotFound):
        service.update_details(new_id(), {"userEmails": ["b@example.com"]})


def test_user_updated_reaches_every_order_of_that_user_only(service):
    user_id = new_id()
    mine = [service.create(order_payload(user_id)) for _ in range(3)]
    other = service.create(order_payload(new_id()))
    assert service.handle_user_updated_v2(event(user_id, 2)) == 3
    for order in mine:
        stored = service.get(order["orderId"])
        assert stored["userEmails"] == ["new@example.com"]
        assert stored["deliveryAddress"] == NEW_ADDRESS
    assert service.get(other["orderId"])["userEmails"] == ["ann@example.com"]


def test_older_or_repeated_events_never_overwrite_newer_data(service):
    user_id = new_id()
    order = service.create(order_payload(user_id))
    service.handle_user_updated_v1(event(user_id, 5, ["v5@example.com"]))
    assert service.handle_user_updated_v2(event(user_id, 4, ["v4@example.com"])) == 0
    assert service.handle_user_updated_v2(event(user_id, 5, ["v5@example.com"])) == 0
    assert service.get(order["orderId"])["userEmails"] == ["v5@example.com"]


def test_events_older_than_the_user_seen_at_creation_are_ignored(service):
    user_id = new_id()
    service.users.get.side_effect = lambda _: stored_user(user_id, 7)
    order = service.create(order_payload(user_id))
    service.handle_user_updated_v1(event(user_id, 6, ["stale@example.com"]))
    assert service.get(order["orderId"])["userEmails"] == ["ann@example.com"]


@pytest.mark.parametrize(
    "body",
    ["garbage", None, {"userId": "x"}, {**event(new_id(), 1), "version": "1"}],
)
def test_malformed_events_are_refused(service, body):
    with pytest.raises(MalformedEvent):
        service.handle_user_updated_v2(body)


@pytest.mark.parametrize("bad_id", [{"$ne": None}, {"$in": ["x"]}, ["x"], 7, None, True])
@pytest.mark.parametrize(
    "call_with",
    [
        lambda s, i: s.get(i),
        lambda s, i: s.update_status(i, "delivered"),
        lambda s, i: s.update_details(i, {"userEmails": ["x@example.com"]}),
    ],
    ids=["get", "update_status", "update_details"],
)
def test_ids_that_are_not_strings_never_reach_a_query(service, bad_id, call_with):
    order = service.create(order_payload())
    with pytest.raises(ValidationFailed) as error:
        call_with(service, bad_id)
    assert error.value.errors == {"id": ["Must be a string."]}
    assert service.get(order["orderId"])["orderStatus"] == "under process"


@pytest.mark.parametrize("odd_id", ["", "x" * 5000, "o1", str(uuid.uuid4()).upper() + "\n"])
def test_strings_no_order_id_can_have_are_not_found(service, odd_id):
    with pytest.raises(OrderNotFound):
        service.get(odd_id)


def test_a_hand_set_contact_is_marked_until_the_next_user_update(service, orders_repository):
    user_id = new_id()
    order = service.create(order_payload(user_id))
    service.update_details(order["orderId"], {"userEmails": ["hand@example.com"]})
    stored = orders_repository.orders.find_one({"orderId": order["orderId"]})
    assert stored["detailsVersion"] == stored["userVersion"] == 1
    service.handle_user_updated_v2(event(user_id, 2))
    stored = orders_repository.orders.find_one({"orderId": order["orderId"]})
    assert "detailsVersion" not in stored and stored["userEmails"] == ["new@example.com"]


def test_ping(service):
    assert service.ping() == {"service": "orders", "status": "ok"}
