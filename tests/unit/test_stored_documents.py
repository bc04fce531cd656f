"""A stored document another tool wrote in a shape that breaks its schema is refused with a
typed, logged StoredDocumentInvalid (the edge's 409), never served or crashed on (502)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from bson import Decimal128, ObjectId

from workers.exceptions import StoredDocumentInvalid
from workers.runtime.documents import public_order, public_user

USER_ID = "0b7c1f2e-1111-4222-8333-444455556666"
ORDER_ID = "1c8d2a3f-2222-4333-9444-555566667777"
ADDRESS = {"street": "1", "city": "c", "state": "s", "postalCode": "1", "country": "US"}
USER = {"_id": ObjectId(), "userId": USER_ID, "emails": ["a@example.com"],
        "deliveryAddress": ADDRESS, "version": 2, "createdAt": datetime(2026, 1, 2),
        "updatedAt": datetime(2026, 1, 3)}  # fmt: skip
ORDER = {"orderId": ORDER_ID, "items": [{"itemId": "a", "quantity": 1, "price": 1.0}],
         "userEmails": ["a@example.com"], "deliveryAddress": ADDRESS,
         "orderStatus": "shipping", "createdAt": datetime(2026, 1, 2),
         "updatedAt": datetime(2026, 1, 3), "userVersion": 4}  # fmt: skip


def test_valid_documents_are_served_in_their_public_shape() -> None:
    assert public_user(USER)["createdAt"] == "2026-01-02T00:00:00.000Z"
    assert "_id" not in public_user(USER)
    assert set(public_order(ORDER)) == set(ORDER) - {"userVersion"}


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"createdAt": 1767312000}, ["createdAt"]),  # a number where a date belongs
        ({"createdAt": "yesterday"}, ["createdAt"]),
        ({"emails": [ObjectId()]}, ["emails"]),  # not JSON at all: used to fail the reply
        ({"emails": "a@example.com"}, ["emails"]),
        ({"deliveryAddress": {"city": "c"}}, ["deliveryAddress"]),
        ({"phoneNumber": Decimal128("12")}, ["phoneNumber"]),
        ({"version": "2", "firstName": 7}, ["firstName", "version"]),
        ({"version": True}, ["version"]),
    ],
)
def test_a_user_that_breaks_its_schema_is_refused_and_logged(caplog, change, fields) -> None:
    caplog.set_level(logging.ERROR, logger="workers.runtime.documents")

    with pytest.raises(StoredDocumentInvalid) as raised:
        public_user({**USER, **change})

    assert (raised.value.kind, raised.value.identifier, raised.value.fields) == (
        "User",
        USER_ID,
        fields,
    )
    assert USER_ID in str(raised.value) and ", ".join(fields) in str(raised.value)
    [record] = caplog.records
    assert record.document == USER_ID and record.fields == fields
    assert record.event == "stored_document_invalid"


def test_an_order_that_breaks_its_schema_is_refused() -> None:
    with pytest.raises(StoredDocumentInvalid) as raised:
        public_order({**ORDER, "orderStatus": 3, "items": [{"itemId": "a", "quantity": 1.5}]})

    assert raised.value.fields == ["items", "orderStatus"]


def test_content_rules_are_left_to_the_write_path_and_the_audit() -> None:
    # Types are checked on every read; patterns and lengths (0.25 ms a user) are not.
    served = public_user({**USER, "phoneNumber": "12", "emails": ["not an email"]})

    assert served["phoneNumber"] == "12"


def test_a_document_without_its_id_is_named_by_its_mongo_id() -> None:
    oid = ObjectId()
    with pytest.raises(StoredDocumentInvalid) as raised:
        public_user({**USER, "_id": oid, "userId": None})

    assert raised.value.identifier == str(oid)
