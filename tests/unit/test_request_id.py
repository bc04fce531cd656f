"""common.request_id: the one X-Request-ID rule, shared by the gateway map and the edge."""

from __future__ import annotations

import re
import uuid

import pytest

from common.request_id import MAX_REQUEST_ID_LENGTH, REQUEST_ID_TOKEN, accept_request_id


@pytest.mark.parametrize("value", ["a", "abc-123", "req.1:2_3", "Z" * 64, str(uuid.uuid4())])
def test_a_safe_token_is_kept(value: str) -> None:
    assert accept_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "Z" * 65, "ok\n", "ok\r", "-x", ".x", "a b", "a/b", "a\x00", "é", '"', "x" * 7000],
)
def test_anything_else_is_replaced_by_a_fresh_uuid4(value: str | None) -> None:
    fresh = accept_request_id(value)

    assert fresh != value
    assert uuid.UUID(fresh).version == 4
    assert accept_request_id(value) != fresh  # fresh each time


def test_the_token_says_64_characters_and_is_unanchored_for_nginx() -> None:
    assert MAX_REQUEST_ID_LENGTH == 64
    assert re.fullmatch(REQUEST_ID_TOKEN, "a" * MAX_REQUEST_ID_LENGTH)
    assert not re.fullmatch(REQUEST_ID_TOKEN, "a" * (MAX_REQUEST_ID_LENGTH + 1))
    assert not REQUEST_ID_TOKEN.startswith("^") and not REQUEST_ID_TOKEN.endswith("$")
