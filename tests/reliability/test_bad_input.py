"""Bad input through the gateway: schemathesis over the OpenAPI document (>= 1 000 cases,
positive and negative) and hand-written hostile requests. Nothing may be a server error."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.support.auth import auth_headers, authenticated_session
from tests.support.data import ADDRESS, ITEMS
from tests.support.reliability import create_user_with_orders, record_figure

pytestmark = pytest.mark.reliability
MIN_CASES = 1000
JSON = {"Content-Type": "application/json"}


@pytest.mark.timeout(240)
def test_schemathesis_through_the_gateway_finds_no_server_error(stack):
    schema = schemathesis.openapi.from_url(f"{stack.gateway}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    runs = [(op, mode) for op in operations for mode in GenerationMode]
    per_run = math.ceil(MIN_CASES * 1.5 / len(runs))  # some runs have no negatives
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    unsatisfiable: list[str] = []
    session = authenticated_session()
    started = time.monotonic()

    for operation, mode in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=per_run,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every CI run
            phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            response = case.call(base_url=stack.gateway, session=session, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                server_errors.append(
                    f"{case.method} {response.request.url} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        try:
            run()
        except Unsatisfiable:
            # No negative case exists for an operation without inputs (GET /health).
            unsatisfiable.append(f"{operation.label} {mode.value}")
    elapsed = time.monotonic() - started
    cases = sum(statuses.values())
    assert cases >= MIN_CASES
    assert server_errors == []
    assert any(400 <= status < 500 for status in statuses)  # negative cases were refused
    record_figure(
        "schemathesis_gateway",
        operations=len(operations),
        cases=cases,
        server_errors=len(server_errors),
        runs_without_cases=unsatisfiable,
        statuses=dict(sorted(statuses.items())),
        seconds=round(elapsed, 1),
    )


def hostile_requests(user_id: str, order_id: str) -> list[tuple[str, str, str, bytes, set[int]]]:
    """(name, method, path, body, acceptable statuses)."""
    nested = b'{"emails": ' + b"[" * 30000 + b"]" * 30000 + b"}"  # under 64 KiB, deep
    user = {"emails": ["n@example.com"], "deliveryAddress": ADDRESS}
    order = {"userId": user_id, "items": ITEMS, "userEmails": ["n@example.com"],
             "deliveryAddress": ADDRESS, "orderStatus": "shipping"}  # fmt: skip

    def raw(document: dict, old: str, new: str) -> bytes:
        return json.dumps(document).replace(old, new).encode()

    many_emails = {"emails": [f"e{i}@x.io" for i in range(4000)], "deliveryAddress": ADDRESS}
    return [
        ("deeply nested JSON", "POST", "/users/", nested, {400}),
        ("10 MB body", "POST", "/users/", b'{"emails": ["' + b"a" * 10_000_000 + b'"]}', {413}),
        ("invalid UTF-8", "POST", "/users/", b'{"emails": ["\xff\xfe@x.io"]}', {400}),
        ("overlong UTF-8", "PUT", f"/users/{user_id}", b'{"emails": ["\xc0\xafa@x.io"]}', {400}),
        ("quantity as string", "POST", "/orders/", raw(order, '"quantity": 1', '"quantity": "1"'),
         {400}),
        ("price as string", "POST", "/orders/", raw(order, '"price": 3.0', '"price": "3.0"'),
         {400}),
        ("status as number", "PUT", f"/orders/{order_id}/status", b'{"orderStatus": 2}', {400}),
        ("NaN", "POST", "/orders/", raw(order, '"price": 3.0', '"price": NaN'), {400}),
        ("Infinity", "POST", "/orders/", raw(order, '"price": 3.0', '"price": Infinity'), {400}),
        ("1e400", "POST", "/orders/", raw(order, '"price": 3.0', '"price": 1e400'), {400}),
        ("huge int", "POST", "/orders/", raw(order, '"quantity": 1', '"quantity": ' + "9" * 30),
         {400}),
        ("4000 emails", "POST", "/users/", json.dumps(many_emails).encode(), {400, 413}),
        ("emails as object", "PUT", f"/users/{user_id}", b'{"emails": {"$ne": null}}', {400}),
        ("mongo operator key", "POST", "/users/", raw(user, '"emails"', '"$where": "1", "emails"'),
         {400}),
        ("duplicate keys", "POST", "/users/", raw(user, '"emails"', '"emails": [], "emails"'),
         {400}),
        # SPEC's email pattern admits a NUL; the schemas refuse control characters on top.
        ("NUL in string", "POST", "/users/", raw(user, "n@example.com", "n\\u0000@example.com"),
         {400}),
        ("lone surrogate", "POST", "/users/", raw(user, "n@example.com", "\\ud800@example.com"),
         {400}),
        ("array body", "POST", "/users/", b"[]", {400}),
        ("empty body", "PUT", f"/users/{user_id}", b"", {400}),
        ("unicode user id", "GET", "/users/%E2%98%83%F0%9F%92%A9", b"", {404}),
        ("unicode order id", "GET", "/orders/%D9%85%D8%B1%D8%AD%D8%A8%D8%A7", b"", {404}),
        ("invalid UTF-8 id", "GET", "/users/%FF%FE", b"", {400, 404}),
        ("double-encoded traversal", "GET", "/orders/%252e%252e%252fetc", b"", {404}),
        ("very long id", "GET", "/orders/" + "x" * 6000, b"", {404, 414}),
    ]  # fmt: skip


# Paths that climb above "/" once nginx decodes and normalises them.
CLIMBING_PATHS = [
    ("GET", "/users/..%2F..%2Fetc%2Fpasswd", b""),
    ("GET", "/users/../../etc/passwd", b""),
    ("PUT", "/users/..%2f..%2fusers", b'{"emails": ["a@b.c"]}'),
]


def send_raw(base: str, method: str, path: str, body: bytes) -> requests.Response:
    # A prepared request keeps the path exactly as written (no dot-segment removal).
    session = authenticated_session()
    headers = {**JSON, **auth_headers()}  # session.send() adds no session headers
    request = requests.Request(method, base + path, data=body or None, headers=headers).prepare()
    request.url = base + path
    return session.send(request, timeout=60)


@pytest.mark.timeout(120)
def test_hostile_requests_get_problem_json_client_errors(stack, database, http):
    user, orders = create_user_with_orders(http, stack.gateway)
    users_before = database.users.count_documents({})
    seen: dict[str, int] = {}
    wrong: list[str] = []
    for name, method, path, body, accepted in hostile_requests(
        user["userId"], orders[0]["orderId"]
    ):
        response = send_raw(stack.gateway, method, path, body)
        seen[name] = response.status_code
        problem = response.status_code < 400 or (
            response.headers.get("Content-Type") == "application/problem+json"
        )
        if response.status_code not in accepted or not problem:
            wrong.append(f"{name}: {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)
    created = sum(status == 201 for status in seen.values())
    assert database.users.count_documents({}) == users_before + created
    stored = database.users.find_one({"userId": user["userId"]})
    assert stored["version"] == 1 and stored["emails"] == user["emails"]
    record_figure("hostile_requests", cases=len(seen), server_errors=0, statuses=seen)


@pytest.mark.parametrize(("method", "path", "body"), CLIMBING_PATHS)
def test_paths_climbing_above_root_are_a_problem_json_client_error(stack, method, path, body):
    response = send_raw(stack.gateway, method, path, body)
    assert response.status_code in (400, 404), response.text[:200]
    assert response.headers.get("Content-Type") == "application/problem+json"


def test_gateway_still_serves_after_the_abuse(stack, http):
    # The 10 MB body and the fuzzing must not have wedged a worker or an edge.
    user, _ = create_user_with_orders(http, stack.gateway, tag=f"after-{uuid.uuid4().hex[:4]}")
    assert http.get(f"{stack.gateway}/users/{user['userId']}", timeout=10).status_code == 200
