"""The generated $jsonSchema validators accept stored documents and refuse broken ones.

nx-27017 does not store validators and mongomock cannot create them, so the validator is
evaluated here by a small interpreter of the $jsonSchema keywords the generator emits.
"""

import re
from datetime import datetime

import pytest

from schemas.mongo_validators import orders_validator, users_validator
from workers.db.commands import seed_documents

BSON_TYPES = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "bool": lambda v: isinstance(v, bool),
    "date": lambda v: isinstance(v, datetime),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, float),
    "decimal": lambda v: False,
}
KNOWN_KEYWORDS = {"bsonType", "properties", "required", "additionalProperties", "items",
                  "pattern", "minLength", "maxLength", "minItems", "maxItems", "enum",
                  "minimum", "maximum", "description"}  # fmt: skip


def violations(node, value, path="$"):
    """All the ways value breaks the $jsonSchema node (empty list = valid)."""
    assert set(node) <= KNOWN_KEYWORDS, f"uninterpreted keyword in {node}"
    found = []
    if "bsonType" in node:
        types = node["bsonType"] if isinstance(node["bsonType"], list) else [node["bsonType"]]
        if not any(BSON_TYPES[t](value) for t in types):
            return [f"{path}: not {types}"]
    if isinstance(value, dict):
        for name in node.get("required", []):
            if name not in value:
                found.append(f"{path}.{name}: required")
        properties = node.get("properties", {})
        for name, item in value.items():
            if name in properties:
                found += violations(properties[name], item, f"{path}.{name}")
            elif node.get("additionalProperties") is False:
                found.append(f"{path}.{name}: not allowed")
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0) or len(value) > node.get("maxItems", 10**9):
            found.append(f"{path}: item count")
        for index, item in enumerate(value):
            found += violations(node.get("items", {}), item, f"{path}[{index}]")
    if isinstance(value, str):
        if len(value) < node.get("minLength", 0) or len(value) > node.get("maxLength", 10**9):
            found.append(f"{path}: length")
        # PCRE's \z (end of subject) is spelled \Z in Python.
        if "pattern" in node and not re.search(node["pattern"].replace(r"\z", r"\Z"), value):
            found.append(f"{path}: pattern")
    if "enum" in node and value not in node["enum"]:
        found.append(f"{path}: enum")
    if isinstance(value, int | float) and value < node.get("minimum", float("-inf")):
        found.append(f"{path}: minimum")
    return found


USERS, ORDERS = seed_documents(7)
USER_SCHEMA = users_validator()["$jsonSchema"]
ORDER_SCHEMA = orders_validator()["$jsonSchema"]


def test_seed_documents_satisfy_the_validators():
    for user in USERS:
        assert violations(USER_SCHEMA, {"_id": "x", **user}) == []
    for order in ORDERS:
        assert violations(ORDER_SCHEMA, {"_id": "x", **order}) == []


def test_internal_bookkeeping_fields_are_allowed():
    user = {
        **USERS[0],
        "eventPendingSince": datetime(2026, 1, 1),
        "eventTraceparent": f"00-{'12' * 16}-{'34' * 8}-01",
    }
    assert violations(USER_SCHEMA, user) == []
    assert violations(USER_SCHEMA, {**user, "eventTraceparent": 7}) != []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"emails": []}, "$.emails: item count"),
        ({"emails": ["nope"]}, "$.emails[0]: pattern"),
        ({"emails": "a@b.c"}, "$.emails: not"),
        ({"userId": "u1"}, "$.userId: pattern"),
        ({"phoneNumber": "12"}, "$.phoneNumber: pattern"),
        ({"phoneNumber": "1234567890\n"}, "$.phoneNumber: pattern"),
        ({"createdAt": "2026-01-01"}, "$.createdAt: not"),
        ({"deliveryAddress": {"street": "s"}}, "$.deliveryAddress.city: required"),
        ({"nickname": "bob"}, "$.nickname: not allowed"),
    ],
)
def test_user_validator_refuses(change, expected):
    found = violations(USER_SCHEMA, {**USERS[0], **change})
    assert any(v.startswith(expected) for v in found), found


def test_user_validator_requires_contract_fields():
    for name in ("userId", "emails", "deliveryAddress"):
        broken = {k: v for k, v in USERS[0].items() if k != name}
        assert f"$.{name}: required" in violations(USER_SCHEMA, broken)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"items": []}, "$.items: item count"),
        ({"items": [{"itemId": "a", "quantity": 0, "price": 1}]}, "$.items[0].quantity: minimum"),
        ({"items": [{"itemId": "a", "quantity": 1, "price": -1}]}, "$.items[0].price: minimum"),
        ({"items": [{"itemId": "a", "quantity": 1.5, "price": 1}]}, "$.items[0].quantity: not"),
        ({"orderStatus": "lost"}, "$.orderStatus: enum"),
        ({"createdAt": None}, "$.createdAt: not"),
        ({"userEmails": ["x"]}, "$.userEmails[0]: pattern"),
    ],
)
def test_order_validator_refuses(change, expected):
    found = violations(ORDER_SCHEMA, {**ORDERS[0], **change})
    assert any(v.startswith(expected) for v in found), found
