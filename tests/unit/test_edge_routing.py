"""Every SPEC §2 endpoint reaches the right RPC, with and without the trailing slash."""

from __future__ import annotations

import pytest

from tests.support.edge_fakes import FakeRpc, build_app

USER = {"emails": ["a@example.com"], "deliveryAddress": {"city": "X"}}
ORDER = {"items": [{"itemId": "i", "quantity": 1, "price": 1.5}], "orderStatus": "shipping"}


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "rpc"),
    [
        ("post", "/users", USER, 201, ("users_v1", "create", (USER,), {})),
        ("get", "/users/u-1", None, 200, ("users_v1", "get", ("u-1",), {})),
        ("put", "/users/u-1", {"emails": ["b@x.y"]}, 200,
         ("users_v1", "update", ("u-1", {"emails": ["b@x.y"]}), {})),
        ("post", "/orders", ORDER, 201, ("orders", "create", (ORDER,), {})),
        ("get", "/orders/o-1", None, 200, ("orders", "get", ("o-1",), {})),
        ("put", "/orders/o-1/status", {"orderStatus": "delivered"}, 200,
         ("orders", "update_status", ("o-1", "delivered"), {})),
        ("put", "/orders/o-1/details", {"userEmails": ["c@x.y"]}, 200,
         ("orders", "update_details", ("o-1", {"userEmails": ["c@x.y"]}), {})),
        ("get", "/orders?status=shipping", None, 200,
         ("orders", "list", ("shipping",), {"limit": 100, "offset": 0, "user_id": None})),
    ],
)  # fmt: skip
def test_endpoint_calls_rpc(method, path, body, status, rpc, slash) -> None:
    fake = FakeRpc()
    client = build_app(fake).test_client()
    base, _, query = path.partition("?")
    url = base + slash + (f"?{query}" if query else "")

    response = getattr(client, method)(url, json=body)

    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    last = fake.last
    assert (last.service, last.method, last.args, last.kwargs) == rpc


@pytest.mark.parametrize(
    ("path", "method"),
    [("/users/u-1", "update"), ("/orders/o-1/status", "update_status")],
)
def test_updates_return_before_and_after(path: str, method: str) -> None:
    before, after = {"v": 1}, {"v": 2}
    client = build_app(FakeRpc(reply=[before, after])).test_client()
    body = {"orderStatus": "shipping"} if "status" in path else {"emails": ["a@b.c"]}

    response = client.put(path, json=body)

    assert response.status_code == 200
    assert response.get_json() == [before, after]


def test_create_returns_the_stored_document() -> None:
    stored = {"userId": "u-1", "emails": ["a@example.com"], "version": 1}
    client = build_app(FakeRpc(reply=stored)).test_client()
    response = client.post("/users/", json=USER)
    assert response.status_code == 201
    assert response.get_json() == stored


def test_list_passes_paging_and_user_filter() -> None:
    fake = FakeRpc(reply=[{"orderId": "o"}])
    client = build_app(fake).test_client()
    user_id = "0b7a9a1e-6f7e-4a54-9d8a-2f0a1c3e4b5d"

    response = client.get(f"/orders/?status=under%20process&limit=1000&offset=20&userId={user_id}")

    assert response.status_code == 200
    assert response.get_json() == [{"orderId": "o"}]
    assert fake.last.args == ("under process",)
    assert fake.last.kwargs == {"limit": 1000, "offset": 20, "user_id": user_id}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "status"),
        ("status=lost", "status"),
        ("status=shipping&limit=0", "limit"),
        ("status=shipping&limit=1001", "limit"),
        ("status=shipping&limit=ten", "limit"),
        ("status=shipping&offset=-1", "offset"),
        ("status=shipping&offset=9007199254740992", "offset"),
        ("status=shipping&userId=not-a-uuid", "userId"),
        ("status=shipping&status=delivered", "status"),
        ("status=shipping&colour=red", "colour"),
    ],
)
def test_list_query_errors_are_400_per_field(query: str, field: str) -> None:
    fake = FakeRpc()
    client = build_app(fake).test_client()

    response = client.get(f"/orders/?{query}")

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
    assert fake.calls == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "orderStatus"),
        ({"orderStatus": "lost"}, "orderStatus"),
        ({"orderStatus": "shipping", "x": 1}, "x"),
    ],
)
def test_status_update_body_errors(body: dict, field: str) -> None:
    fake = FakeRpc()
    response = build_app(fake).test_client().put("/orders/o-1/status", json=body)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert fake.calls == []


@pytest.mark.parametrize(("service", "version"), [("users_v1", "v1"), ("users_v2", "v2")])
def test_edge_serves_its_own_generation(service: str, version: str) -> None:
    fake = FakeRpc()
    client = build_app(fake, USERS_SERVICE=service).test_client()
    other = "v2" if version == "v1" else "v1"

    # A pin naming the other generation is the gateway's business; this edge serves its own.
    response = client.get("/users/u-1", headers={"X-Users-Version": other})

    assert response.headers["X-Users-Version"] == version
    assert fake.last.service == service


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/users/u-1"), ("post", "/users"), ("delete", "/users/u-1"), ("get", "/users/")],
)
def test_every_users_response_carries_the_version(method: str, path: str) -> None:
    client = build_app(FakeRpc(), USERS_SERVICE="users_v2").test_client()
    response = getattr(client, method)(path, data="x", content_type="text/plain")
    assert response.headers["X-Users-Version"] == "v2"


def test_orders_responses_do_not_claim_a_users_version() -> None:
    client = build_app(FakeRpc()).test_client()
    assert "X-Users-Version" not in client.get("/orders/o-1").headers


def test_unknown_users_service_is_refused() -> None:
    with pytest.raises(ValueError, match="USERS_SERVICE"):
        build_app(FakeRpc(), USERS_SERVICE="users_v3")
