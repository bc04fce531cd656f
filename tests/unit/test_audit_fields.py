"""Users and orders record who created and last changed them, never in a response (SPEC §7)."""

from __future__ import annotations

import uuid
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from schemas.mongo_validators import orders_validator, users_validator
from tests.support.data import address
from workers.orders.service import OrdersService
from workers.runtime.identity import UNIDENTIFIED, Caller
from workers.users_v1 import UsersV1
from workers.users_v2 import UsersV2

ADDRESS = address()


def user_payload(email: str) -> dict:
    return {"emails": [email], "deliveryAddress": ADDRESS}


@pytest.mark.parametrize("service_cls", [UsersV1, UsersV2], ids=["v1", "v2"])
def test_a_user_records_its_creator_and_last_changer(service_cls, users_repository):
    creator = worker_factory(service_cls, repository=users_repository, caller="billing")
    user = creator.create(user_payload(f"{uuid.uuid4().hex}@example.com"))
    stored = users_repository.find(user["userId"])
    assert (stored["createdBy"], stored["updatedBy"]) == ("billing", "billing")
    assert "createdBy" not in user and "updatedBy" not in user

    changer = worker_factory(
        service_cls, repository=users_repository, caller=f"user:{user['userId']}"
    )
    before, after = changer.update(user["userId"], {"deliveryAddress": {**ADDRESS, "city": "X"}})
    stored = users_repository.find(user["userId"])
    assert stored["createdBy"] == "billing"
    assert stored["updatedBy"] == f"user:{user['userId']}"
    assert not {"createdBy", "updatedBy"} & (
        set(before) | set(after) | set(changer.get(user["userId"]))
    )


def test_an_order_records_its_creator_and_each_change(orders_repository):
    users = Mock()
    creator = worker_factory(
        OrdersService, repository=orders_repository, users=users, caller="shop"
    )
    order = creator.create(
        {
            "items": [{"itemId": "i1", "quantity": 1, "price": 2.5}],
            "userEmails": ["a@example.com"],
            "deliveryAddress": ADDRESS,
            "orderStatus": "under process",
        }
    )
    stored = orders_repository.find(order["orderId"])
    assert (stored["createdBy"], stored["updatedBy"]) == ("shop", "shop")

    shipper = worker_factory(
        OrdersService, repository=orders_repository, users=users, caller="ops"
    )
    shipper.update_status(order["orderId"], "shipping")
    assert orders_repository.find(order["orderId"])["updatedBy"] == "ops"

    editor = worker_factory(
        OrdersService, repository=orders_repository, users=users, caller="user:u9"
    )
    before, after = editor.update_details(order["orderId"], {"userEmails": ["b@example.com"]})
    stored = orders_repository.find(order["orderId"])
    assert (stored["createdBy"], stored["updatedBy"]) == ("shop", "user:u9")
    returned = set(before) | set(after) | set(editor.get(order["orderId"]))
    for listed in editor.list("shipping"):
        returned |= set(listed)
    assert not {"createdBy", "updatedBy"} & returned


@pytest.mark.parametrize(
    "data, expected",
    [({"caller": "dev"}, "dev"), ({"caller": "user:u1"}, "user:u1"), ({}, UNIDENTIFIED),
     ({"caller": ""}, UNIDENTIFIED), ({"caller": 7}, UNIDENTIFIED)],
)  # fmt: skip
def test_the_caller_provider_reads_the_context_data(data, expected):
    assert Caller().get_dependency(Mock(data=data)) == expected


def test_the_stored_document_validators_allow_the_audit_fields_as_strings():
    for validator in (users_validator(), orders_validator()):
        props = validator["$jsonSchema"]["properties"]
        assert props["createdBy"] == props["updatedBy"] == {"bsonType": "string"}
        assert validator["$jsonSchema"]["additionalProperties"] is False
