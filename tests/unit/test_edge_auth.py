"""Edge authentication and authorisation (SPEC §7): Kong's answers, without trusting a gateway."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from common.auth import store
from http_edge.problems import PROBLEM_BASE
from tests.support.auth import auth_headers, bearer
from tests.support.edge_fakes import FakeRpc, anonymous_client, build_app

KEY_REALM = 'Key realm="kong"'


@pytest.fixture
def private_store(tmp_path):
    """A store of this test's own (revoking here must not touch the session's)."""
    path = tmp_path / "auth" / "credentials.json"
    store.create_issuer(path)
    return path


def private_app(path, fake=None, check_every=None):
    app = build_app(fake or FakeRpc(), AUTH_CREDENTIALS_FILE=str(path))
    if check_every is not None:
        app.extensions["credentials"].check_every = check_every
    return app


def assert_problem(response, status: int, detail: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["detail"] == detail
    assert body["type"] == PROBLEM_BASE + ("unauthenticated" if status == 401 else "forbidden")
    assert body["requestId"] == response.headers["X-Request-ID"]
    if status == 401:
        assert response.headers["WWW-Authenticate"] == KEY_REALM
    else:
        assert "WWW-Authenticate" not in response.headers
    return body


PROTECTED = [
    ("get", "/users/u1"),
    ("post", "/users/"),
    ("put", "/users/u1"),
    ("get", "/orders/?status=shipping"),
    ("get", "/orders/o1"),
    ("post", "/orders"),
    ("put", "/orders/o1/status"),
    ("put", "/orders/o1/details"),
    ("delete", "/users/u1"),  # no such route: still 401 before 405, as Kong's route answers
]


@pytest.mark.parametrize("method, path", PROTECTED)
def test_no_credentials_is_401_with_a_challenge_and_no_rpc(method, path):
    fake = FakeRpc()
    response = getattr(anonymous_client(build_app(fake)), method)(path, json={})
    assert_problem(response, 401, "No API key found in request")
    assert fake.calls == []


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json", "/ready"])
def test_open_paths_answer_without_credentials(path):
    response = anonymous_client(build_app(FakeRpc())).get(path)
    assert response.status_code == 200


def test_an_unknown_key_is_401_unauthorized():
    fake = FakeRpc()
    response = anonymous_client(build_app(fake)).get("/users/u1", headers={"apikey": "nope"})
    assert_problem(response, 401, "Unauthorized")
    assert fake.calls == []


def test_a_valid_key_reaches_the_service_with_its_consumer_as_caller(fake, client):
    response = client.get("/users/u1")
    assert response.status_code == 200
    assert fake.last.context["caller"] == "tests"


@pytest.mark.parametrize(
    "forged",
    [
        {"X-Consumer-Username": "tests", "X-Consumer-Groups": "users:read"},
        {"X-Consumer-ID": "1", "X-Credential-Identifier": "x", "X-Anonymous-Consumer": "false"},
    ],
)
def test_forged_consumer_headers_grant_nothing(forged):
    response = anonymous_client(build_app(FakeRpc())).get("/users/u1", headers=forged)
    assert_problem(response, 401, "No API key found in request")


def test_forged_consumer_headers_do_not_change_who_the_caller_is(fake, client):
    client.get("/users/u1", headers={"X-Consumer-Username": "admin"})
    assert fake.last.context["caller"] == "tests"


@pytest.mark.parametrize(
    "groups, method, path",
    [
        (["orders:read"], "get", "/users/u1"),
        (["users:read"], "put", "/users/u1"),
        (["users:read", "users:write"], "get", "/orders/?status=shipping"),
        (["orders:read"], "post", "/orders/"),
        (["orders:read"], "put", "/orders/o1/status"),
        (["users:write"], "post", "/orders/"),
    ],
)
def test_a_key_without_the_routes_group_is_403(private_store, groups, method, path):
    key = store.create_consumer(private_store, "narrow", groups)
    fake = FakeRpc()
    response = getattr(anonymous_client(private_app(private_store, fake)), method)(
        path, json={}, headers={"apikey": key}
    )
    assert_problem(response, 403, "You cannot consume this service")
    assert fake.calls == []


def test_a_key_with_the_routes_group_passes(private_store):
    key = store.create_consumer(private_store, "reader", ["orders:read"])
    client = anonymous_client(private_app(private_store))
    assert client.get("/orders/o1", headers={"apikey": key}).status_code == 200


def test_a_revoked_key_is_refused_within_the_reload_interval(private_store):
    key = store.create_consumer(private_store, "short-lived", ["users:read"])
    client = anonymous_client(private_app(private_store, check_every=0.2))
    assert client.get("/users/u1", headers={"apikey": key}).status_code == 200
    store.revoke_consumer(private_store, "short-lived")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = client.get("/users/u1", headers={"apikey": key})
        if response.status_code == 401:
            break
        time.sleep(0.05)
    assert_problem(response, 401, "Unauthorized")


def test_a_new_key_is_accepted_after_reload_and_the_store_is_not_reread_per_request(
    private_store, monkeypatch
):
    app = private_app(private_store, check_every=3600)
    client = anonymous_client(app)
    client.get("/users/u1", headers={"apikey": "x"})  # the first key checked loads the store
    key = store.create_consumer(private_store, "later", ["users:read"])
    loads = []
    monkeypatch.setattr(
        "http_edge.auth.load_store", lambda p: loads.append(p) or store.load_store(p)
    )
    assert client.get("/users/u1", headers={"apikey": key}).status_code == 401  # not rechecked
    app.extensions["credentials"].check_every = 0
    assert client.get("/users/u1", headers={"apikey": key}).status_code == 200
    assert client.get("/users/u1", headers={"apikey": key}).status_code == 200
    assert len(loads) == 1  # stat unchanged: not read again


def test_a_missing_store_refuses_everyone(tmp_path):
    client = anonymous_client(private_app(tmp_path / "absent.json"))
    assert_problem(client.get("/users/u1", headers={"apikey": "x"}), 401, "Unauthorized")


# --- end-user tokens -------------------------------------------------------------------


def token(path, claims, headers=None, key_path=None):
    private = store.private_key_path(key_path or path).read_bytes()
    return jwt.encode(claims, private, algorithm="RS256", headers=headers)


def claims(**overrides):
    return {"iss": "micro-local", "sub": "u1", "exp": int(time.time()) + 60, **overrides}


@pytest.mark.parametrize(
    "make, detail",
    [
        (lambda p, o: token(p, claims(exp=int(time.time()) - 1)), "token expired"),
        (lambda p, o: token(p, claims(iss="elsewhere")), "No credentials found for given 'iss'"),
        (
            lambda p, o: token(p, {"sub": "u1", "exp": int(time.time()) + 60}),
            "No mandatory 'iss' in claims",
        ),
        (lambda p, o: token(p, {"iss": "micro-local", "sub": "u1"}), "'exp' must be present"),
        (lambda p, o: token(p, claims(), key_path=o), "Invalid signature"),
        (lambda p, o: jwt.encode(claims(), "s" * 32, algorithm="HS256"), "Invalid algorithm"),
    ],
    ids=["expired", "unknown-iss", "no-iss", "no-exp", "other-key", "hs256"],
)
def test_bad_tokens_are_401_with_kongs_messages(private_store, tmp_path, make, detail):
    other = tmp_path / "other" / "credentials.json"
    store.create_issuer(other)
    fake = FakeRpc()
    headers = {"Authorization": f"Bearer {make(private_store, other)}"}
    response = anonymous_client(private_app(private_store, fake)).get("/users/u1", headers=headers)
    assert_problem(response, 401, detail)
    assert fake.calls == []


def test_a_malformed_token_is_a_bad_token(private_store):
    client = anonymous_client(private_app(private_store))
    response = client.get("/users/u1", headers={"Authorization": "Bearer not.a.jwt"})
    body = assert_problem(response, 401, response.get_json()["detail"])
    assert body["detail"].startswith("Bad token; ")


def test_a_valid_token_reads_its_own_user_as_user_caller():
    fake = FakeRpc()
    response = anonymous_client(build_app(fake)).get("/users/u1", headers=bearer("u1"))
    assert response.status_code == 200
    assert fake.last.context["caller"] == "user:u1"


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/users/u2"),
        ("put", "/users/u2"),
        ("post", "/users/"),
        ("put", "/orders/o1/status"),
    ],
)
def test_an_end_user_is_refused_other_users_user_creation_and_status_changes(method, path):
    fake = FakeRpc()
    client = anonymous_client(build_app(fake))
    response = getattr(client, method)(
        path, json={"orderStatus": "shipping"}, headers=bearer("u1")
    )
    assert response.status_code == 403
    assert fake.calls == []


def orders_of(owner_by_id):
    def respond(call):
        if call.method == "get":
            return {"orderId": call.args[0], "userId": owner_by_id[call.args[0]]}
        if call.method == "update_details":
            return [{"orderId": call.args[0]}, {"orderId": call.args[0]}]
        return [] if call.method == "list" else {"orderId": "new", **call.args[0]}

    return FakeRpc(responder=respond)


def test_another_users_order_is_404_for_an_end_user_and_visible_to_its_owner():
    fake = orders_of({"o1": "u1", "o2": "u2"})
    client = anonymous_client(build_app(fake))
    assert client.get("/orders/o1", headers=bearer("u1")).status_code == 200
    response = client.get("/orders/o2", headers=bearer("u1"))
    assert response.status_code == 404
    assert response.get_json()["type"] == PROBLEM_BASE + "order-not-found"
    unowned = orders_of({"o3": None})
    assert (
        anonymous_client(build_app(unowned)).get("/orders/o3", headers=bearer("u1")).status_code
        == 404
    )


def test_an_end_user_changes_details_of_own_orders_only():
    fake = orders_of({"o1": "u1", "o2": "u2"})
    client = anonymous_client(build_app(fake))
    body = {"userEmails": ["a@b.c"]}
    assert client.put("/orders/o1/details", json=body, headers=bearer("u1")).status_code == 200
    assert client.put("/orders/o2/details", json=body, headers=bearer("u1")).status_code == 404
    assert [c.method for c in fake.calls] == ["get", "update_details", "get"]


def test_an_end_users_listing_is_forced_to_their_user_id():
    fake = orders_of({})
    client = anonymous_client(build_app(fake))
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert client.get("/orders/?status=shipping", headers=bearer(me)).status_code == 200
    assert fake.last.kwargs["user_id"] == me
    response = client.get(f"/orders/?status=shipping&userId={other}", headers=bearer(me))
    assert response.status_code == 403
    mine = client.get(f"/orders/?status=shipping&userId={me}", headers=bearer(me))
    assert mine.status_code == 200 and fake.last.kwargs["user_id"] == me


def test_an_end_user_creates_orders_for_themselves_only():
    fake = orders_of({})
    client = anonymous_client(build_app(fake))
    order = {"items": [{"itemId": "i", "quantity": 1, "price": 1}]}
    assert client.post("/orders/", json=order, headers=bearer("u1")).status_code == 201
    assert fake.last.args[0]["userId"] == "u1"
    response = client.post("/orders/", json={**order, "userId": "u2"}, headers=bearer("u1"))
    assert response.status_code == 403
    assert (
        client.post("/orders/", json={**order, "userId": "u1"}, headers=bearer("u1")).status_code
        == 201
    )


def test_an_application_key_is_not_bound_by_ownership(fake, client):
    fake.responder = lambda call: {"orderId": "o2", "userId": "u2"}
    assert client.get("/orders/o2").status_code == 200
    other = str(uuid.uuid4())
    assert client.get(f"/orders/?status=shipping&userId={other}").status_code == 200
    assert fake.last.kwargs["user_id"] == other


def test_a_bad_token_with_a_valid_key_still_authenticates_by_the_key(fake):
    client = anonymous_client(build_app(fake))
    headers = {"Authorization": "Bearer junk", **auth_headers()}
    assert client.get("/users/u1", headers=headers).status_code == 200
    assert fake.last.context["caller"] == "tests"


def test_a_remembered_token_still_expires(private_store):
    client = anonymous_client(private_app(private_store))
    headers = {"Authorization": f"Bearer {token(private_store, claims(exp=int(time.time()) + 2))}"}
    assert client.get("/users/u1", headers=headers).status_code == 200
    assert client.get("/users/u1", headers=headers).status_code == 200  # from the cache
    time.sleep(2.1)
    assert_problem(client.get("/users/u1", headers=headers), 401, "token expired")


def test_a_remembered_token_dies_with_its_issuer(private_store):
    client = anonymous_client(private_app(private_store, check_every=0))
    headers = {"Authorization": f"Bearer {token(private_store, claims())}"}
    assert client.get("/users/u1", headers=headers).status_code == 200
    current = store.load_store(private_store)
    store.save_store(store.CredentialStore(current.consumers, {}), private_store)
    detail = "No credentials found for given 'iss'"
    assert_problem(client.get("/users/u1", headers=headers), 401, detail)


def test_verifying_a_token_once_is_enough(private_store, monkeypatch):
    client = anonymous_client(private_app(private_store))
    headers = {"Authorization": f"Bearer {token(private_store, claims())}"}
    decoded = []
    real = jwt.decode
    monkeypatch.setattr(
        "http_edge.auth.jwt.decode", lambda *a, **k: decoded.append(1) or real(*a, **k)
    )
    for _ in range(5):
        assert client.get("/users/u1", headers=headers).status_code == 200
    assert len(decoded) == 2  # the first request's two decodes, then the cache


def test_concurrent_first_requests_all_wait_for_the_store(private_store, monkeypatch):
    # A fresh gunicorn worker's threads all ask at once while the first read is slow: none
    # may be answered from the store not loaded yet (it refused them, found by e2e).
    from concurrent.futures import ThreadPoolExecutor

    key = store.create_consumer(private_store, "busy", ["users:read"])
    app = private_app(private_store)
    real = store.load_store

    def slow_load(path):
        time.sleep(0.3)
        return real(path)

    monkeypatch.setattr("http_edge.auth.load_store", slow_load)

    def ask(_: int) -> int:
        return anonymous_client(app).get("/users/u1", headers={"apikey": key}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(ask, range(8))) == [200] * 8
