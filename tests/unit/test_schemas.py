"""Every rule of SPEC §1 as the marshmallow schemas enforce it."""

import copy

import pytest

from schemas.emails import email_key
from schemas.orders import (
    OrderCreateSchema,
    OrderDetailsUpdateSchema,
    OrderListQuerySchema,
    OrderStatusUpdateSchema,
)
from schemas.users import (
    UserContactUpdateSchema,
    UserCreateV1Schema,
    UserCreateV2Schema,
    UserEventSchema,
)
from tests.support.data import address

ADDRESS = address()
USER = {"emails": ["ann@example.com"], "deliveryAddress": ADDRESS, "firstName": "Ann",
        "lastName": "Lee", "phoneNumber": "5551234567"}  # fmt: skip
ITEM = {"itemId": "sku-1", "quantity": 2, "price": 9.5, "name": "Widget"}
ORDER = {"userId": "0b9c3a2e-1d4f-4a6b-9c8d-7e6f5a4b3c2d", "items": [ITEM],
         "userEmails": ["ann@example.com"], "deliveryAddress": ADDRESS,
         "orderStatus": "under process"}  # fmt: skip


def with_change(document, path, value):
    """Copy of document with the dotted path set to value (or removed if value is ...)."""
    doc = copy.deepcopy(document)
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return doc


def field_errors(schema, payload):
    return schema.validate(payload)


def test_valid_user_passes_both_generations():
    assert field_errors(UserCreateV1Schema(), USER) == {}
    assert field_errors(UserCreateV2Schema(), USER) == {}


@pytest.mark.parametrize(
    ("path", "value", "error_field"),
    [
        ("emails", ..., "emails"),
        ("emails", [], "emails"),
        ("emails", "ann@example.com", "emails"),
        ("emails", ["not-an-email"], "emails"),
        ("emails", ["two@@example.com"], "emails"),
        ("emails", ["sp ace@example.com"], "emails"),
        ("emails", ["a@x.io", "A@x.io"], "emails"),
        ("emails", [f"u{i}@x.io" for i in range(21)], "emails"),
        ("emails", [42], "emails"),
        ("emails", ["n\x00@example.com"], "emails"),
        ("deliveryAddress.city", "Spring\nfield", "deliveryAddress"),
        ("deliveryAddress", ..., "deliveryAddress"),
        ("deliveryAddress.city", "", "deliveryAddress"),
        ("deliveryAddress.city", ..., "deliveryAddress"),
        ("deliveryAddress.city", 7, "deliveryAddress"),
        ("deliveryAddress.extra", "x", "deliveryAddress"),
        ("phoneNumber", "123", "phoneNumber"),
        ("phoneNumber", "1234567890123456", "phoneNumber"),
        ("phoneNumber", "555-123-4567", "phoneNumber"),
        ("phoneNumber", "1234567890\n", "phoneNumber"),
        ("emails", ["ann@example.com\n"], "emails"),
        # the same address in another Unicode form, case or with a trailing dot
        ("emails", ["ann@example.com", "ANN@EXAMPLE.COM."], "emails"),
        ("emails", ["\u00e9@example.com", "e\u0301@example.com"], "emails"),
        ("emails", ["ann@example.com", "\uff41nn@example.com"], "emails"),
        ("emails", ["a@b\u00fccher.de", "a@xn--bcher-kva.de"], "emails"),
        # bidi, zero-width and C1 control characters, in emails and in every text field
        ("emails", ["ann\u202e@example.com"], "emails"),
        ("emails", ["ann\u200b@example.com"], "emails"),
        ("firstName", "Ann\u2066", "firstName"),
        ("lastName", "Lee\u200d", "lastName"),
        ("deliveryAddress.street", "1 Main\u0085St", "deliveryAddress"),
        ("deliveryAddress.city", "\ufeffSpringfield", "deliveryAddress"),
        ("firstName", 5, "firstName"),
        ("userId", "mine", "userId"),
    ],
)
def test_user_rules(path, value, error_field):
    assert error_field in field_errors(UserCreateV1Schema(), with_change(USER, path, value))


def test_v1_accepts_iso_timestamps_and_rejects_garbage():
    loaded = UserCreateV1Schema().load({**USER, "createdAt": "2026-01-31T12:00:00.000Z"})
    assert loaded["createdAt"].year == 2026
    assert "createdAt" in field_errors(UserCreateV1Schema(), {**USER, "createdAt": "yesterday"})


def test_contact_update_allows_only_emails_and_address():
    assert field_errors(UserContactUpdateSchema(), {"emails": ["x@y.z"]}) == {}
    assert field_errors(UserContactUpdateSchema(), {"deliveryAddress": ADDRESS}) == {}
    assert "firstName" in field_errors(UserContactUpdateSchema(), {"firstName": "Bo"})
    assert "_schema" in field_errors(UserContactUpdateSchema(), {})


def test_valid_order_passes():
    assert field_errors(OrderCreateSchema(), ORDER) == {}
    assert field_errors(OrderCreateSchema(), with_change(ORDER, "userId", ...)) == {}


@pytest.mark.parametrize(
    ("path", "value", "error_field"),
    [
        ("items", [], "items"),
        ("items", ..., "items"),
        ("items.0.quantity", 0, "items"),
        ("items.0.quantity", 1.5, "items"),
        ("items.0.quantity", "2", "items"),
        ("items.0.quantity", True, "items"),
        ("items.0.price", -0.01, "items"),
        ("items.0.price", "9.5", "items"),
        ("items.0.price", float("nan"), "items"),
        ("items.0.price", float("inf"), "items"),
        ("items.0.itemId", ..., "items"),
        ("items.0.colour", "red", "items"),
        ("userEmails", [], "userEmails"),
        ("userEmails", ["nope"], "userEmails"),
        ("orderStatus", "lost", "orderStatus"),
        ("orderStatus", ..., "orderStatus"),
        ("orderId", "client-chosen", "orderId"),
        ("createdAt", "2026-01-01T00:00:00Z", "createdAt"),
        ("userId", "not-a-uuid", "userId"),
    ],
)
def test_order_rules(path, value, error_field):
    assert error_field in field_errors(OrderCreateSchema(), with_change(ORDER, path, value))


@pytest.mark.parametrize("status", ["under process", "shipping", "delivered"])
def test_each_status_is_accepted(status):
    assert field_errors(OrderStatusUpdateSchema(), {"orderStatus": status}) == {}


def test_details_update_allows_only_user_emails_and_address():
    assert field_errors(OrderDetailsUpdateSchema(), {"userEmails": ["a@b.c"]}) == {}
    assert "orderStatus" in field_errors(OrderDetailsUpdateSchema(), {"orderStatus": "shipping"})
    assert "_schema" in field_errors(OrderDetailsUpdateSchema(), {})


@pytest.mark.parametrize(
    ("query", "error_field"),
    [
        ({}, "status"),
        ({"status": "lost"}, "status"),
        ({"status": "shipping", "limit": 0}, "limit"),
        ({"status": "shipping", "limit": 1001}, "limit"),
        ({"status": "shipping", "offset": -1}, "offset"),
        ({"status": "shipping", "offset": 2**53}, "offset"),
        ({"status": "shipping", "limit": "ten"}, "limit"),
        ({"status": "shipping", "userId": ORDER["userId"] + "\n"}, "userId"),
    ],
)
def test_list_query_rules(query, error_field):
    assert error_field in field_errors(OrderListQuerySchema(), query)


def test_list_query_defaults():
    assert OrderListQuerySchema().load({"status": "shipping"}) == {
        "status": "shipping",
        "limit": 100,
        "offset": 0,
    }


def test_event_schema_requires_version():
    event = {"userId": ORDER["userId"], "userEmails": ["a@b.c"], "deliveryAddress": ADDRESS,
             "version": 3, "updatedAt": "2026-01-31T12:00:00.000Z"}  # fmt: skip
    assert field_errors(UserEventSchema(), event) == {}
    assert "version" in field_errors(UserEventSchema(), with_change(event, "version", "3"))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Ann@Example.com", "ann@example.com"),
        ("ann@example.com.", "ann@example.com"),
        ("\u00e9@example.com", "e\u0301@example.com"),  # NFC vs NFD
        ("\uff41nn@\uff45xample.com", "ann@example.com"),  # fullwidth letters
        ("a@B\u00fccher.DE", "a@xn--bcher-kva.de"),  # IDNA
        ("STRASSE@x.io", "stra\u00dfe@x.io"),  # case-folding, not lower()
    ],
)
def test_one_address_has_one_key(one, other):
    assert email_key(one) == email_key(other)


def test_different_addresses_keep_different_keys():
    assert email_key("ann@example.com") != email_key("ann@example.org")
    assert email_key("a_b@ex_ample.com") == "a_b@ex_ample.com"  # not an IDN: folded only


def test_names_in_any_script_are_fine():
    assert (
        field_errors(
            UserCreateV1Schema(), {**USER, "firstName": "Zo\u00eb \u674e \u0639\u0644\u064a"}
        )
        == {}
    )
