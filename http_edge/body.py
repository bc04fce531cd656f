"""HTTP-level request checks: JSON content type, body size, strict JSON object parsing.

Field rules are the workers' (marshmallow); the edge only guarantees they get a JSON object.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import (
    ClientDisconnected,
    RequestEntityTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)

from http_edge.config import MAX_BODY_BYTES
from http_edge.problems import EdgeError

# I-JSON (RFC 7493): integers beyond +-2**53 lose precision in other clients and overflow
# MongoDB's int64; refuse them here rather than fail deep inside a worker.
MAX_SAFE_INTEGER = 2**53 - 1
STALLED = "The request body stopped arriving (see EDGE_READ_TIMEOUT); send it in full."


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    raise EdgeError(f"Invalid JSON: {name} is not a JSON number.")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise EdgeError(f"Invalid JSON: number {text[:40]} is out of range.")
    return value


def _parse_int(text: str) -> int:
    if len(text) > 20:
        raise EdgeError("Invalid JSON: integer out of range.")
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise EdgeError(f"Invalid JSON: integer {text} is out of range.")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EdgeError(f"Invalid JSON: key {key[:60]!r} appears twice.")
        result[key] = value
    return result


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys, safe integers."""
    if not raw.strip():
        raise EdgeError("The request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EdgeError("The request body is not valid UTF-8.") from exc
    try:
        parsed = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise EdgeError(f"Invalid JSON: {exc.msg} at {where}.") from exc
    except RecursionError as exc:
        raise EdgeError("Invalid JSON: nested too deeply.") from exc
    if "\\u" in text and _has_lone_surrogate(parsed):
        raise EdgeError("Invalid JSON: a \\u escape is a lone UTF-16 surrogate.")
    return parsed


def _has_lone_surrogate(document: Any) -> bool:
    """`"\\ud800"` is valid JSON syntax but no Unicode text (I-JSON, RFC 7493 2.1): BSON
    cannot encode it, so the worker failed and the client got a 502 (found by
    tests/reliability/test_bad_input.py). Only bodies with a \\u escape can hold one."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return True
    return False


def _read_body() -> bytes:
    """The raw body; a malformed chunked body is a 400 and a stalled one a 408."""
    try:
        return _read_raw_body()
    except ParseException as exc:  # gunicorn's InvalidChunkSize, ChunkMissingTerminator...
        raise EdgeError("The chunked request body is malformed.") from exc
    except (BlockingIOError, TimeoutError) as exc:  # the socket's read timeout (EAGAIN)
        raise RequestTimeout(STALLED) from exc
    except ClientDisconnected as exc:
        # werkzeug turns every read error into ClientDisconnected: look underneath.
        if isinstance(exc.__context__, BlockingIOError | TimeoutError):
            raise RequestTimeout(STALLED) from exc
        raise


def _read_raw_body() -> bytes:
    if request.content_length is not None:
        return request.get_data(cache=False)  # the declared length was checked above
    # Chunked body: werkzeug's stream stops silently at MAX_CONTENT_LENGTH (it truncates),
    # so peek one byte past it on the raw input to tell "exactly 64 KiB" from "more".
    data = request.stream.read()
    if len(data) >= MAX_BODY_BYTES and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge(f"The body is over {MAX_BODY_BYTES // 1024} KiB.")
    return data


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or the right 400/413/415."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"The body is over {MAX_BODY_BYTES // 1024} KiB.")
    if not _is_json(request.mimetype):
        raise UnsupportedMediaType("Send the body as application/json.")
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("JSON bodies must be UTF-8.")
    body = parse_json(_read_body())
    if not isinstance(body, dict):
        raise EdgeError("The request body must be a JSON object.")
    return body
