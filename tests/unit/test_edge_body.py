"""HTTP-level body rules: JSON only (415), 64 KiB (413), strict JSON objects (400)."""

from __future__ import annotations

import io

import pytest

LIMIT = 64 * 1024
WRITES = [("post", "/users/"), ("put", "/users/u-1"), ("post", "/orders/"),
          ("put", "/orders/o-1/status"), ("put", "/orders/o-1/details")]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_non_json_writes_are_415(client, fake, method, path, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = getattr(client, method)(path, data=b'{"a": 1}', headers=headers)
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"
    assert fake.calls == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=UTF-8", "application/merge+json"],
)
def test_json_content_types_are_accepted(client, fake, content_type) -> None:
    response = client.post("/orders/", data=b'{"a": 1}', content_type=content_type)
    assert response.status_code == 201
    assert fake.last.args == ({"a": 1},)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_body_over_64_kib_is_413(client, fake, method, path) -> None:
    body = b'{"a": "' + b"x" * LIMIT + b'"}'
    response = getattr(client, method)(path, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert fake.calls == []


def test_chunked_body_over_64_kib_is_413(client, fake) -> None:
    body = b'{"a": "' + b"x" * LIMIT + b'"}'
    # No Content-Length: the edge must count the streamed bytes itself.
    response = client.post(
        "/users/", input_stream=io.BytesIO(body), content_type="application/json"
    )
    assert response.status_code == 413
    assert fake.calls == []


@pytest.mark.parametrize("chunked", [False, True])
def test_body_of_exactly_64_kib_is_accepted(client, fake, chunked: bool) -> None:
    padding = LIMIT - len(b'{"a": ""}')
    body = b'{"a": "' + b"x" * padding + b'"}'
    assert len(body) == LIMIT
    kwargs = {"input_stream": io.BytesIO(body)} if chunked else {"data": body}
    response = client.post("/users/", content_type="application/json", **kwargs)
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"{", "Invalid JSON"),
        (b"{'a': 1}", "Invalid JSON"),
        (b'{"a": 1} trailing', "Invalid JSON"),
        (b'{"a": "\xff\xfe"}', "UTF-8"),
        (b"\xef\xbb\xbf{}", "Invalid JSON"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e400}', "out of range"),
        (b'{"a": 123456789012345678901234567890}', "out of range"),
        (b'{"a": 9007199254740992}', "out of range"),
        (b'{"a": 1, "a": 2}', "twice"),
        (b"[" * 100_00 + b"]" * 100_00, "JSON"),
        (b"[]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
        (b"true", "JSON object"),
    ],
)
def test_malformed_json_is_400(client, fake, raw: bytes, reason: str) -> None:
    response = client.post("/users/", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("malformed-request")
    assert reason in problem["detail"]
    assert fake.calls == []


def test_largest_safe_integer_passes(client, fake) -> None:
    response = client.post(
        "/orders/", data=b'{"n": 9007199254740991, "f": -0.5}', content_type="application/json"
    )
    assert response.status_code == 201
    assert fake.last.args == ({"n": 9007199254740991, "f": -0.5},)


def test_reads_ignore_bodies(client) -> None:
    response = client.get("/users/u-1", data=b"not json", content_type="text/plain")
    assert response.status_code == 200
