"""Records another tool wrote in a shape that breaks the schema, read through a real edge:
a logged 409 problem naming the record and the fields, not a 502."""

from __future__ import annotations

import json
import time
import uuid

import pymongo
import pytest

from tests.support.auth import api
from tests.support.data import address

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ADDRESS = address(state="IL", postalCode="62701")


@pytest.fixture
def database(edge_stack):
    client = pymongo.MongoClient(edge_stack.workers.mongo_uri)
    yield client[edge_stack.workers.mongo_db]
    client.close()


def logged_invalid(edge_stack, identifier: str) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        found = [
            json.loads(line)
            for line in edge_stack.workers.log_text().splitlines()
            if line.startswith("{") and f'"document": "{identifier}"' in line
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_user_stored_in_a_broken_shape_is_a_409_problem(edge_stack, database, version):
    user_id = str(uuid.uuid4())
    database.users.insert_one(
        {"userId": user_id, "emails": [f"{user_id[:8]}@example.com"],
         "deliveryAddress": ADDRESS, "createdAt": "last tuesday", "phoneNumber": 5551234567}
    )  # fmt: skip
    request_id = f"broken-{user_id[:8]}"

    response = api.get(
        f"{edge_stack.edge(version).url}/users/{user_id}",
        headers={"X-Request-ID": request_id},
        timeout=10,
    )

    assert response.status_code == 409, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/stored-document-invalid")
    assert user_id in problem["detail"] and "createdAt, phoneNumber" in problem["detail"]
    assert problem["requestId"] == request_id
    [line] = logged_invalid(edge_stack, user_id)
    assert line["level"] == "ERROR" and line["request_id"] == request_id
    assert line["fields"] == ["createdAt", "phoneNumber"]


def test_an_order_with_a_value_json_cannot_carry_is_a_409_not_a_502(edge_stack, database):
    order_id = str(uuid.uuid4())
    database.orders.insert_one(
        {"orderId": order_id, "items": [{"itemId": "a", "quantity": 1, "price": 1.0}],
         "userEmails": [b"\x00raw bytes"], "deliveryAddress": ADDRESS,
         "orderStatus": "delivered", "createdAt": 17, "updatedAt": 18}
    )  # fmt: skip

    response = api.get(f"{edge_stack.v1.url}/orders/{order_id}", timeout=10)

    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("/stored-document-invalid")
    assert logged_invalid(edge_stack, order_id)[0]["fields"] == [
        "createdAt",
        "updatedAt",
        "userEmails",
    ]
