"""X-Request-ID: accepted or generated, echoed on every response, sent to workers, logged."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from common.logs import JsonFormatter
from tests.support.edge_fakes import FakeRpc, build_app


@pytest.mark.parametrize("request_id", ["abc-123", "req.1:2_3", "A" * 64, str(uuid.uuid4())])
def test_valid_request_id_is_echoed_and_sent_to_the_worker(client, fake, request_id) -> None:
    response = client.get("/users/u-1", headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id
    # Beside them travels the trace (tests/unit/test_tracing.py checks its value).
    assert set(fake.last.context) == {"request_id", "caller", "traceparent"}
    assert fake.last.context["request_id"] == request_id
    assert fake.last.context["caller"] == "tests"


@pytest.mark.parametrize(
    "request_id",
    ["", " ", "A" * 65, "has space", "semi;colon", "ünïcode", "-leading", "a\tb", "a/b"],
)
def test_unusable_request_id_is_replaced_by_a_uuid4(client, fake, request_id) -> None:
    response = client.get("/users/u-1", headers={"X-Request-ID": request_id})
    generated = response.headers["X-Request-ID"]
    assert generated != request_id
    assert uuid.UUID(generated).version == 4
    assert fake.last.context["request_id"] == generated
    assert fake.last.context["caller"] == "tests"


def test_missing_request_id_is_generated_per_request(client) -> None:
    first = client.get("/health").headers["X-Request-ID"]
    second = client.get("/health").headers["X-Request-ID"]
    assert first != second
    assert uuid.UUID(first).version == 4


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/nowhere", {}),
        ("delete", "/orders/o-1", {}),
        ("post", "/orders/", {"data": "x", "content_type": "text/plain"}),
        ("post", "/orders/", {"data": "{", "content_type": "application/json"}),
        ("get", "/openapi.json", {}),
        ("get", "/docs", {}),
    ],
)
def test_every_response_carries_the_request_id(client, method, path, kwargs) -> None:
    response = getattr(client, method)(path, headers={"X-Request-ID": "trace-me"}, **kwargs)
    assert response.headers["X-Request-ID"] == "trace-me"


def test_edge_errors_carry_the_request_id_too() -> None:
    client = build_app(FakeRpc(error=RuntimeError("boom"))).test_client()
    response = client.get("/orders/o-1", headers={"X-Request-ID": "trace-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "trace-500"
    assert response.get_json()["requestId"] == "trace-500"


def test_logs_are_json_lines_with_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("http_edge"))
    logger = logging.getLogger("http_edge")
    logger.addHandler(handler)
    try:
        client = build_app(FakeRpc(error=RuntimeError("boom"))).test_client()
        logger.setLevel(logging.INFO)
        client.get("/orders/o-1", headers={"X-Request-ID": "log-me"})
    finally:
        logger.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == "http_edge.access"]
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert access and access[-1]["request_id"] == "log-me"
    assert access[-1]["status"] == 500 and access[-1]["path"] == "/orders/o-1"
    assert "duration_ms" in access[-1]
    # Our own bugs are logged with their trace (which the client never sees).
    assert errors and errors[-1]["request_id"] == "log-me" and "Traceback" in errors[-1]["exc"]
