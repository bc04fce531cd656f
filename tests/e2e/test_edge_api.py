"""The edge over real gunicorn, workers, RabbitMQ and nx-27017: every endpoint, both outcomes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.support.auth import api
from tests.support.data import address

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ADDRESS = address(state="IL", postalCode="62701")
ITEMS = [{"itemId": "sku-1", "quantity": 2, "price": 9.5, "name": "Widget"}]
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@example.com"


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture(params=["v1", "v2"])
def edge(request, edge_stack):
    return edge_stack.edge(request.param)


@pytest.fixture
def user(edge_stack) -> dict[str, Any]:
    response = api.post(
        f"{edge_stack.v1.url}/users/",
        json={"emails": [email()], "deliveryAddress": ADDRESS},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def order(edge_stack, user) -> dict[str, Any]:
    body = {
        "userId": user["userId"],
        "items": ITEMS,
        "userEmails": user["emails"],
        "deliveryAddress": ADDRESS,
        "orderStatus": "under process",
    }
    response = api.post(f"{edge_stack.v1.url}/orders/", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


# --- users ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_create_and_get_user(edge, slash: str) -> None:
    version = "v1" if edge.users_service == "users_v1" else "v2"
    payload = {"emails": [email()], "deliveryAddress": ADDRESS, "firstName": "Ada",
               "phoneNumber": "5551234567"}  # fmt: skip

    created = api.post(f"{edge.url}/users{slash}", json=payload, timeout=10)

    assert created.status_code == 201, created.text
    assert created.headers["X-Users-Version"] == version
    user = created.json()
    assert uuid.UUID(user["userId"]).version == 4
    assert user["emails"] == payload["emails"] and user["deliveryAddress"] == ADDRESS
    assert "_id" not in user
    fetched = api.get(f"{edge.url}/users/{user['userId']}{slash}", timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["X-Users-Version"] == version
    assert fetched.json() == user


def test_v1_keeps_client_timestamps_v2_sets_its_own(edge_stack) -> None:
    stamp = "2020-01-02T03:04:05.000Z"
    body = {"deliveryAddress": ADDRESS, "createdAt": stamp, "updatedAt": stamp}
    v1 = api.post(f"{edge_stack.v1.url}/users/", json={**body, "emails": [email()]}).json()
    v2 = api.post(f"{edge_stack.v2.url}/users/", json={**body, "emails": [email()]}).json()
    assert v1["createdAt"] == stamp
    assert v2["createdAt"] != stamp and v2["createdAt"].endswith("Z")


def test_update_user_returns_before_and_after(edge, user) -> None:
    new_emails = [email()]
    response = api.put(f"{edge.url}/users/{user['userId']}", json={"emails": new_emails})
    assert response.status_code == 200, response.text
    before, after = response.json()
    assert before["emails"] == user["emails"]
    assert after["emails"] == new_emails
    assert after["deliveryAddress"] == ADDRESS


def test_user_not_found(edge) -> None:
    problem(api.get(f"{edge.url}/users/{MISSING_ID}", timeout=10), 404)
    problem(
        api.put(f"{edge.url}/users/{MISSING_ID}", json={"emails": [email()]}, timeout=10),
        404,
    )


def test_user_validation_errors_are_per_field(edge) -> None:
    response = api.post(
        f"{edge.url}/users/",
        json={"emails": ["not-an-email"], "deliveryAddress": {"city": "X"}, "extra": 1},
        timeout=10,
    )
    errors = problem(response, 400)["errors"]
    assert "emails.0" in errors or "emails" in errors
    assert any(key.startswith("deliveryAddress") for key in errors)
    assert "extra" in errors
    problem(api.put(f"{edge.url}/users/{MISSING_ID}", json={}, timeout=10), 400)


def test_email_taken_is_409(edge, user) -> None:
    taken = user["emails"][0]
    response = api.post(
        f"{edge.url}/users/", json={"emails": [taken], "deliveryAddress": ADDRESS}, timeout=10
    )
    problem(response, 409)
    other = api.post(
        f"{edge.url}/users/", json={"emails": [email()], "deliveryAddress": ADDRESS}, timeout=10
    ).json()
    response = api.put(f"{edge.url}/users/{other['userId']}", json={"emails": [taken]})
    problem(response, 409)


# --- orders --------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_create_and_get_order(edge_stack, user, slash: str) -> None:
    url = edge_stack.v2.url
    body = {"userId": user["userId"], "items": ITEMS, "userEmails": user["emails"],
            "deliveryAddress": ADDRESS, "orderStatus": "shipping"}  # fmt: skip
    created = api.post(f"{url}/orders{slash}", json=body, timeout=10)
    assert created.status_code == 201, created.text
    assert "X-Users-Version" not in created.headers
    order = created.json()
    assert uuid.UUID(order["orderId"]).version == 4
    assert order["items"] == ITEMS and order["createdAt"].endswith("Z")
    fetched = api.get(f"{url}/orders/{order['orderId']}{slash}", timeout=10)
    assert fetched.status_code == 200 and fetched.json() == order


def test_order_for_unknown_user_is_422(edge_stack) -> None:
    body = {"userId": MISSING_ID, "items": ITEMS, "userEmails": [email()],
            "deliveryAddress": ADDRESS, "orderStatus": "shipping"}  # fmt: skip
    problem(api.post(f"{edge_stack.v1.url}/orders/", json=body, timeout=10), 422)


def test_order_validation_and_not_found(edge_stack) -> None:
    url = edge_stack.v1.url
    bad = {"items": [{"itemId": "x", "quantity": 0, "price": -1}], "orderStatus": "lost"}
    errors = problem(api.post(f"{url}/orders/", json=bad, timeout=10), 400)["errors"]
    assert "orderStatus" in errors and "userEmails" in errors
    assert any(key.startswith("items") for key in errors)
    problem(api.get(f"{url}/orders/{MISSING_ID}", timeout=10), 404)
    problem(api.put(f"{url}/orders/{MISSING_ID}/status", json={"orderStatus": "shipping"}), 404)
    problem(api.put(f"{url}/orders/{MISSING_ID}/details", json={"userEmails": [email()]}), 404)


@pytest.mark.parametrize("slash", ["", "/"])
def test_update_status_and_details(edge_stack, order, slash: str) -> None:
    url = f"{edge_stack.v1.url}/orders/{order['orderId']}"
    response = api.put(f"{url}/status{slash}", json={"orderStatus": "delivered"})
    assert response.status_code == 200, response.text
    before, after = response.json()
    assert (before["orderStatus"], after["orderStatus"]) == ("under process", "delivered")
    problem(api.put(f"{url}/status", json={"orderStatus": "lost"}), 400)

    changed = {**ADDRESS, "city": "Shelbyville"}
    response = api.put(f"{url}/details{slash}", json={"deliveryAddress": changed})
    assert response.status_code == 200, response.text
    before, after = response.json()
    assert before["deliveryAddress"]["city"] == "Springfield"
    assert after["deliveryAddress"] == changed
    problem(api.put(f"{url}/details", json={"items": []}), 400)


def test_list_orders_by_status_with_paging(edge_stack, user) -> None:
    url = edge_stack.v1.url
    ids = []
    for _ in range(3):
        body = {"userId": user["userId"], "items": ITEMS, "userEmails": user["emails"],
                "deliveryAddress": ADDRESS, "orderStatus": "shipping"}  # fmt: skip
        ids.append(api.post(f"{url}/orders/", json=body, timeout=10).json()["orderId"])

    mine = api.get(
        f"{url}/orders/", params={"status": "shipping", "userId": user["userId"]}, timeout=10
    )
    assert mine.status_code == 200
    assert sorted(o["orderId"] for o in mine.json()) == sorted(ids)
    assert all(o["orderStatus"] == "shipping" for o in mine.json())

    page = api.get(
        f"{url}/orders",
        params={"status": "shipping", "userId": user["userId"], "limit": 2, "offset": 1},
        timeout=10,
    )
    assert page.status_code == 200
    assert len(page.json()) == 2
    assert {o["orderId"] for o in page.json()} <= set(ids)

    problem(api.get(f"{url}/orders/", params={"status": "lost"}, timeout=10), 400)
    problem(api.get(f"{url}/orders/", timeout=10), 400)
    problem(api.get(f"{url}/orders/?status=shipping&limit=1001", timeout=10), 400)


def test_user_update_reaches_the_orders(edge_stack, user, order) -> None:
    new_emails = [email()]
    response = api.put(
        f"{edge_stack.v2.url}/users/{user['userId']}", json={"emails": new_emails}, timeout=10
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        current = api.get(f"{edge_stack.v1.url}/orders/{order['orderId']}").json()
        if current["userEmails"] == new_emails:
            return
        time.sleep(0.05)
    pytest.fail(f"order still has {current['userEmails']}, expected {new_emails}")


# --- HTTP-level rules, headers, docs -------------------------------------------------------


def test_http_level_errors(edge_stack) -> None:
    url = edge_stack.v1.url
    problem(api.post(f"{url}/users/", data="x", headers={"Content-Type": "text/plain"}), 415)
    big = b'{"a": "' + b"x" * (64 * 1024) + b'"}'
    json_type = {"Content-Type": "application/json"}
    problem(api.post(f"{url}/users/", data=big, headers=json_type), 413)
    # Streamed (chunked) bodies are counted too.
    problem(api.post(f"{url}/users/", data=iter([big[:40000], big[40000:]]),
                          headers=json_type), 413)  # fmt: skip
    problem(api.post(f"{url}/users/", data=b'{"a": NaN}', headers=json_type), 400)
    problem(api.post(f"{url}/users/", data=b"\xff\xfe", headers=json_type), 400)
    problem(api.post(f"{url}/users/", data=b"[1]", headers=json_type), 400)
    problem(api.get(f"{url}/nowhere"), 404)
    response = api.delete(f"{url}/users/{MISSING_ID}")
    problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_request_id_is_echoed_and_reaches_the_worker_logs(edge_stack, user) -> None:
    request_id = f"e2e-{uuid.uuid4().hex}"
    response = api.get(
        f"{edge_stack.v2.url}/users/{user['userId']}",
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id
    generated = api.get(f"{edge_stack.v1.url}/orders/{MISSING_ID}").headers["X-Request-ID"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logs = edge_stack.workers.log_text()
        if f'"request_id": "{request_id}"' in logs and generated in logs:
            break
        time.sleep(0.1)
    logs = edge_stack.workers.log_text()
    assert f'"request_id": "{request_id}"' in logs
    assert generated in logs


def test_health_ready_openapi_and_docs(edge) -> None:
    assert api.get(f"{edge.url}/health").json() == {"status": "ok"}
    ready = api.get(f"{edge.url}/ready").json()
    assert ready["status"] == "ready" and set(ready["checks"].values()) == {"ok"}
    document = api.get(f"{edge.url}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    page = api.get(f"{edge.url}/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert api.get(f"{edge.url}/docs/assets/swagger-ui-bundle.js").status_code == 200
