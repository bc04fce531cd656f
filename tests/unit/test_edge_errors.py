"""The one table from error type to HTTP status (SPEC §2), one row per parametrized case."""

from __future__ import annotations

import pytest
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService

from http_edge.problems import ERROR_TABLE, PROBLEM_BASE, EdgeError, Forbidden, Unauthenticated
from http_edge.rpc import BrokerUnavailable
from tests.support.edge_fakes import FakeRpc, build_app
from workers.exceptions import (
    EmailTaken,
    OrderNotFound,
    RequestRedelivered,
    StorageUnavailable,
    StoredDocumentInvalid,
    UnknownUser,
    UpdateConflict,
    UserNotFound,
    ValidationFailed,
)

# (raised by the RPC, status, problem slug, Retry-After expected)
ROWS = [
    (ValidationFailed({"emails": ["Missing data."]}), 400, "validation-failed", False),
    (UserNotFound("u-1"), 404, "user-not-found", False),
    (OrderNotFound("o-1"), 404, "order-not-found", False),
    (EmailTaken(["a@b.c"]), 409, "email-taken", False),
    (UpdateConflict("u1"), 409, "update-conflict", True),
    (StoredDocumentInvalid("User", "u-1", ["createdAt"]), 409, "stored-document-invalid", False),
    (UnknownUser("u-9"), 422, "unknown-user", False),
    (StorageUnavailable(), 503, "storage-unavailable", True),
    (RequestRedelivered(), 503, "broker-failover", True),
    (BrokerUnavailable("connection refused"), 503, "broker-unavailable", True),
    (UnknownService("users_v1"), 503, "service-unavailable", True),
    (RpcTimeout(10), 504, "rpc-timeout", False),
    (RemoteError("KeyError", "'secret' at line 3 of /srv/worker.py"), 502, "service-error", False),
    (ZeroDivisionError("edge bug"), 500, "internal-error", False),
]  # fmt: skip


def test_every_table_row_has_a_case() -> None:
    # EdgeError: test_edge_body; Unauthenticated, Forbidden: test_edge_auth
    covered = {type(exc) for exc, *_ in ROWS} | {EdgeError, Unauthenticated, Forbidden}
    assert {exc_type for exc_type, _ in ERROR_TABLE} <= covered


@pytest.mark.parametrize(
    ("error", "status", "slug", "retry"), ROWS, ids=[type(r[0]).__name__ for r in ROWS]
)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/users/u-1", None),
        ("put", "/orders/o-1/details", {"userEmails": ["a@b.c"]}),
    ],
)
def test_remote_error_maps_to_status(
    error: BaseException, status: int, slug: str, retry: bool, method: str, path: str, body
) -> None:
    client = build_app(FakeRpc(error=error)).test_client()
    response = getattr(client, method)(path, json=body)

    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == PROBLEM_BASE + slug
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    assert ("Retry-After" in response.headers) is retry
    assert response.headers["X-Request-ID"] == problem["requestId"]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "<html" not in text.lower()
    if status >= 500:
        # Internal detail (worker file names, exception text) stays in the logs.
        assert "/srv/worker.py" not in text and "edge bug" not in text


def test_validation_errors_are_flattened_per_field() -> None:
    nested = {
        "deliveryAddress": {"city": ["Missing data for required field."]},
        "items": {"0": {"quantity": ["Must be greater than or equal to 1."]}},
        "emails": ["Not a valid email address."],
    }
    client = build_app(FakeRpc(error=ValidationFailed(nested))).test_client()

    response = client.post("/orders/", json={"items": []})

    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "deliveryAddress.city": ["Missing data for required field."],
        "items.0.quantity": ["Must be greater than or equal to 1."],
        "emails": ["Not a valid email address."],
    }


def test_retry_after_uses_configured_seconds() -> None:
    client = build_app(FakeRpc(error=StorageUnavailable()), RETRY_AFTER=7).test_client()
    assert client.get("/orders/o-1").headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/nowhere", 404),
        ("get", "/users/a/b/c", 404),
        ("get", "/orders/o-1//", 404),
        ("delete", "/users/u-1", 405),
        ("get", "/users/", 405),
        ("patch", "/orders/o-1/status", 405),
        ("post", "/orders/o-1", 405),
    ],
)
def test_unknown_paths_and_methods_are_json(method: str, path: str, status: int) -> None:
    client = build_app(FakeRpc()).test_client()
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == status
    if status == 405:
        assert response.headers["Allow"]


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (None, "ok"),
        (RpcTimeout(2), "no answer within 2.5s"),
        (UnknownService("orders"), "not running (no queue or no consumer)"),
        (StorageUnavailable(), "database unreachable"),
        (UserNotFound("x"), "error: UserNotFound"),
    ],
)
def test_ready_checks_are_described_from_the_table(error, said) -> None:
    from http_edge.problems import describe_check

    assert describe_check(error, 2.5) == said
