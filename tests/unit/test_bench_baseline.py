"""bench/baseline_app.py: the lean baseline's order insert runs the orders worker's rules."""

from __future__ import annotations

import mongomock
import pytest
from flask.testing import FlaskClient

from bench import baseline_app
from tests.support.data import address

ITEMS = [{"itemId": "sku-1", "quantity": 2, "price": 9.5}]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setattr(baseline_app, "mongo_client", lambda config: mongomock.MongoClient())
    return baseline_app.create_app().test_client()


def order(user_id: str) -> dict:
    return {"userId": user_id, "items": ITEMS, "userEmails": ["sent@bench.example"],
            "deliveryAddress": address(), "orderStatus": "under process"}  # fmt: skip


def test_an_order_takes_its_users_contact_like_the_worker(client: FlaskClient) -> None:
    home = address(city="Shelbyville")
    user = client.post(
        "/users/", json={"emails": ["owner@bench.example"], "deliveryAddress": home}
    ).get_json()

    response = client.post("/orders/", json=order(user["userId"]))

    assert response.status_code == 201
    created = response.get_json()
    # What the client sent is validated, then replaced by the user's contact (domain rule).
    assert created["userEmails"] == ["owner@bench.example"]
    assert (created["userId"], created["deliveryAddress"]) == (user["userId"], home)
    assert created["orderId"] and created["items"] == ITEMS


def test_unknown_user_bad_body_and_invalid_order_are_answered_like_the_edge(
    client: FlaskClient,
) -> None:
    unknown = client.post("/orders/", json=order("7f4df3f2-8c1e-4d8a-9b7e-0a1b2c3d4e5f"))
    not_object = client.post("/orders/", data="[1]", content_type="application/json")
    no_items = client.post("/orders/", json={**order("7f4df3f2-8c1e-4d8a-9b7e-0a1b2c3d4e5f"),
                                             "items": []})  # fmt: skip

    assert unknown.status_code == 422
    assert unknown.mimetype == "application/problem+json"
    assert not_object.status_code == 400
    assert no_items.status_code == 400
