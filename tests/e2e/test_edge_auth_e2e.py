"""Straight to the real edges, around any gateway: credentials are checked there (SPEC §7)."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pymongo
import pytest
import requests

from common.auth import store
from tests.support.auth import api, bearer, store_file
from tests.support.data import address

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

KEY_REALM = 'Key realm="kong"'
ADDRESS = address()
VERSIONS = ["v1", "v2"]


def email() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}@example.com"


def assert_problem(response: requests.Response, status: int, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    if detail is not None:
        assert body["detail"] == detail
    if status == 401:
        assert response.headers["WWW-Authenticate"] == KEY_REALM


@pytest.fixture(scope="module")
def people(edge_stack):
    """Two users with one order each, created with the application key."""
    url = edge_stack.v1.url
    users, orders = [], []
    for _ in range(2):
        user = api.post(f"{url}/users/", json={"emails": [email()], "deliveryAddress": ADDRESS})
        assert user.status_code == 201, user.text
        users.append(user.json())
        order = api.post(
            f"{url}/orders/",
            json={"userId": users[-1]["userId"], "orderStatus": "shipping",
                  "items": [{"itemId": "i1", "quantity": 1, "price": 1.0}],
                  "userEmails": users[-1]["emails"], "deliveryAddress": ADDRESS},
        )  # fmt: skip
        assert order.status_code == 201, order.text
        orders.append(order.json())
    return users, orders


@pytest.fixture
def consumer():
    """A consumer of this test's own in the session store (the edges' store)."""
    names = []

    def create(groups: list[str]) -> str:
        names.append(f"e2e-{uuid.uuid4().hex[:8]}")
        return store.create_consumer(store_file(), names[-1], groups)

    yield create
    for name in names:
        store.revoke_consumer(store_file(), name)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/users/{user}"), ("POST", "/users/"), ("PUT", "/users/{user}"),
     ("GET", "/orders/?status=shipping"), ("GET", "/orders/{order}"), ("POST", "/orders/"),
     ("PUT", "/orders/{order}/status"), ("PUT", "/orders/{order}/details")],
)  # fmt: skip
def test_no_credentials_is_401_with_a_challenge(edge_stack, people, version, method, path):
    users, orders = people
    url = edge_stack.edge(version).url + path.format(
        user=users[0]["userId"], order=orders[0]["orderId"]
    )
    response = requests.request(method, url, json={}, timeout=10)
    assert_problem(response, 401, "No API key found in request")


@pytest.mark.parametrize("version", VERSIONS)
def test_open_paths_need_no_credentials(edge_stack, version):
    url = edge_stack.edge(version).url
    for path in ("/health", "/ready", "/openapi.json", "/docs"):
        assert requests.get(url + path, timeout=10).status_code == 200, path


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unknown_key_is_401(edge_stack, people, version):
    url = f"{edge_stack.edge(version).url}/users/{people[0][0]['userId']}"
    response = requests.get(url, headers={"apikey": "not-a-key"}, timeout=10)
    assert_problem(response, 401, "Unauthorized")


@pytest.mark.parametrize(
    "forged",
    [{"X-Consumer-Username": "dev", "X-Consumer-Groups": "users:read,users:write"},
     {"X-Consumer-ID": str(uuid.uuid4()), "X-Credential-Identifier": "dev",
      "X-Anonymous-Consumer": "false"}],
)  # fmt: skip
def test_forged_identity_headers_are_401(edge_stack, people, forged):
    url = f"{edge_stack.v1.url}/users/{people[0][0]['userId']}"
    assert_problem(requests.get(url, headers=forged, timeout=10), 401)


def test_a_revoked_key_is_refused_within_5_seconds(edge_stack, people, consumer):
    key = consumer(["users:read"])
    name = store.load_store(store_file()).consumer_for_key(key)[0]
    urls = [f"{edge_stack.edge(v).url}/users/{people[0][0]['userId']}" for v in VERSIONS]
    # Both edges and every gunicorn worker know the new key within the reload interval.
    deadline = time.monotonic() + 5
    while any(
        requests.get(u, headers={"apikey": key}, timeout=10).status_code != 200 for u in urls
    ):
        assert time.monotonic() < deadline, "a new key was not accepted within 5 s"
        time.sleep(0.1)
    store.revoke_consumer(store_file(), name)
    revoked = time.monotonic()
    refused = set()
    while refused != set(urls):
        assert time.monotonic() - revoked < 5, "a revoked key still worked after 5 s"
        for url in urls:
            if requests.get(url, headers={"apikey": key}, timeout=10).status_code == 401:
                refused.add(url)
        time.sleep(0.1)
    # Every worker process of each edge, not just the first one asked: 20 requests each.
    time.sleep(max(0.0, revoked + 2.5 - time.monotonic()))
    for url in urls:
        for _ in range(20):
            assert_problem(requests.get(url, headers={"apikey": key}, timeout=10), 401)


def test_a_key_without_the_routes_group_is_403(edge_stack, people, consumer):
    key = consumer(["orders:read"])
    time.sleep(1.5)  # the edges re-read the store at most once a second
    users, orders = people
    headers = {"apikey": key}
    base = edge_stack.v2.url
    assert_problem(
        requests.get(f"{base}/users/{users[0]['userId']}", headers=headers, timeout=10),
        403, "You cannot consume this service",
    )  # fmt: skip
    assert_problem(
        requests.put(f"{base}/orders/{orders[0]['orderId']}/status", headers=headers,
                     json={"orderStatus": "delivered"}, timeout=10),
        403, "You cannot consume this service",
    )  # fmt: skip
    assert (
        requests.get(f"{base}/orders/{orders[0]['orderId']}", headers=headers).status_code == 200
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_an_expired_token_is_401(edge_stack, people, version):
    user_id = people[0][0]["userId"]
    private = store.private_key_path(store_file()).read_bytes()
    token = jwt.encode(
        {"iss": "micro-local", "sub": user_id, "exp": int(time.time()) - 5}, private, "RS256"
    )
    response = requests.get(
        f"{edge_stack.edge(version).url}/users/{user_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert_problem(response, 401, "token expired")


@pytest.mark.parametrize("version", VERSIONS)
def test_an_end_user_sees_and_changes_only_their_own_data(edge_stack, people, version):
    (me, other), (my_order, other_order) = people
    url, mine = edge_stack.edge(version).url, bearer(me["userId"])

    own = requests.get(f"{url}/users/{me['userId']}", headers=mine, timeout=10)
    assert own.status_code == 200 and own.json()["userId"] == me["userId"]
    assert_problem(requests.get(f"{url}/users/{other['userId']}", headers=mine, timeout=10), 403)
    assert_problem(
        requests.put(f"{url}/users/{other['userId']}", headers=mine,
                     json={"deliveryAddress": ADDRESS}, timeout=10), 403,
    )  # fmt: skip

    assert requests.get(f"{url}/orders/{my_order['orderId']}", headers=mine).status_code == 200
    assert_problem(requests.get(f"{url}/orders/{other_order['orderId']}", headers=mine), 404)
    listed = requests.get(f"{url}/orders/?status=shipping", headers=mine, timeout=10)
    assert listed.status_code == 200
    assert {o["userId"] for o in listed.json()} == {me["userId"]}
    assert my_order["orderId"] in {o["orderId"] for o in listed.json()}
    assert_problem(
        requests.put(f"{url}/orders/{my_order['orderId']}/status", headers=mine,
                     json={"orderStatus": "delivered"}, timeout=10), 403,
    )  # fmt: skip
    assert_problem(
        requests.put(f"{url}/orders/{other_order['orderId']}/details", headers=mine,
                     json={"deliveryAddress": ADDRESS}, timeout=10), 404,
    )  # fmt: skip


def test_an_end_user_creates_an_order_for_themselves_only(edge_stack, people):
    (me, other), _ = people
    url, mine = edge_stack.v1.url, bearer(me["userId"])
    order = {"items": [{"itemId": "i2", "quantity": 2, "price": 3.0}], "orderStatus": "shipping",
             "userEmails": me["emails"], "deliveryAddress": ADDRESS}  # fmt: skip
    created = requests.post(f"{url}/orders/", json=order, headers=mine, timeout=10)
    assert created.status_code == 201, created.text
    assert created.json()["userId"] == me["userId"]
    refused = requests.post(
        f"{url}/orders/", json={**order, "userId": other["userId"]}, headers=mine, timeout=10
    )
    assert_problem(refused, 403)


def test_the_caller_is_stored_and_logged_but_never_returned(edge_stack, people):
    (me, _), (my_order, _) = people
    client = pymongo.MongoClient(edge_stack.workers.mongo_uri)
    try:
        database = client[edge_stack.workers.mongo_db]
        request_id = f"audit-{uuid.uuid4().hex[:8]}"
        changed = requests.put(
            f"{edge_stack.v1.url}/users/{me['userId']}",
            json={"deliveryAddress": {**ADDRESS, "street": "9 Audit Way"}},
            headers={**bearer(me["userId"]), "X-Request-ID": request_id},
            timeout=10,
        )
        assert changed.status_code == 200, changed.text
        assert not {"createdBy", "updatedBy"} & (set(changed.json()[0]) | set(changed.json()[1]))
        stored = database.users.find_one({"userId": me["userId"]})
        assert stored["createdBy"] == "tests"
        assert stored["updatedBy"] == f"user:{me['userId']}"
        assert database.orders.find_one({"orderId": my_order["orderId"]})["createdBy"] == "tests"
        deadline = time.monotonic() + 10
        while True:
            lines = [
                json.loads(line)
                for line in edge_stack.workers.log_text().splitlines()
                if line.startswith("{") and request_id in line
            ]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert lines and {line.get("caller") for line in lines} == {f"user:{me['userId']}"}
        access = [
            json.loads(line)
            for line in edge_stack.v1.log_path.read_text(errors="replace").splitlines()
            if line.startswith("{") and request_id in line and '"event": "request"' in line
        ]
        assert [line["caller"] for line in access] == [f"user:{me['userId']}"]
    finally:
        client.close()
