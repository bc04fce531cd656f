"""Errors as RFC 9457 problem+json: the one table from error type to HTTP status."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from werkzeug.exceptions import HTTPException

from http_edge.rpc import BrokerUnavailable
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

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://micro.example/problems/"


@dataclass(frozen=True)
class Problem:
    status: int
    slug: str
    title: str
    retry: bool = False  # send Retry-After: the failure is expected to pass
    detail: str | None = None  # fixed text for the client; else the error's own message
    check: str | None = None  # what /ready says of a dependency failing so ({timeout}: s)
    headers: tuple[tuple[str, str], ...] = ()  # sent with every answer of this row


class EdgeError(Exception):
    """A request the edge itself refuses (bad JSON, bad query) before any RPC."""

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class Unauthenticated(Exception):
    """No, unknown, revoked or expired credentials (SPEC §7); the detail is Kong's message."""


class Forbidden(Exception):
    """Valid credentials without the route's group or the data's ownership (SPEC §7)."""


# Kong key-auth's challenge; the gateways send the same on every 401.
WWW_AUTHENTICATE = (("WWW-Authenticate", 'Key realm="kong"'),)

# First matching row wins, so subclasses come before their bases. The details of 502 and
# 500 are about our internals, not the client's request: logged, never echoed.
ERROR_TABLE: tuple[tuple[type[BaseException], Problem], ...] = (
    (EdgeError, Problem(400, "malformed-request", "Malformed request")),
    (Unauthenticated,
     Problem(401, "unauthenticated", "Unauthorized", headers=WWW_AUTHENTICATE)),
    (Forbidden, Problem(403, "forbidden", "Forbidden")),
    (ValidationFailed, Problem(400, "validation-failed", "Request validation failed")),
    (UserNotFound, Problem(404, "user-not-found", "User not found")),
    (OrderNotFound, Problem(404, "order-not-found", "Order not found")),
    (EmailTaken, Problem(409, "email-taken", "Email already in use")),
    (UpdateConflict, Problem(409, "update-conflict", "Concurrent update, retry", True)),
    (StoredDocumentInvalid,
     Problem(409, "stored-document-invalid", "Stored record breaks its schema")),
    (UnknownUser, Problem(422, "unknown-user", "Order names an unknown user")),
    (StorageUnavailable,
     Problem(503, "storage-unavailable", "Database unavailable", True,
             check="database unreachable")),
    (RequestRedelivered,
     Problem(503, "broker-failover", "Message broker failed over", True,
             detail="The broker failed over during the request; retry it.")),
    (BrokerUnavailable,
     Problem(503, "broker-unavailable", "Message broker unavailable", True,
             detail="The message broker cannot be reached; retry later.")),
    (UnknownService,
     Problem(503, "service-unavailable", "Service not running", True,
             detail="A service needed for this request is not running; retry later.",
             check="not running (no queue or no consumer)")),
    (RpcTimeout,
     Problem(504, "rpc-timeout", "Service did not answer in time",
             detail="A service did not answer within the RPC timeout.",
             check="no answer within {timeout:g}s")),
    (RemoteError,
     Problem(502, "service-error", "Service failed",
             detail="A service failed while handling the request.")),
)  # fmt: skip
INTERNAL = Problem(
    500, "internal-error", "Internal server error",
    detail="The edge failed while handling the request.",
)  # fmt: skip


def problem_for(exc: BaseException) -> Problem:
    for exc_type, problem in ERROR_TABLE:
        if isinstance(exc, exc_type):
            return problem
    return INTERNAL


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested marshmallow messages -> {"deliveryAddress.city": ["..."]} (SPEC: {field: [msgs]})."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(errors, list | tuple):
        for value in errors:
            for field, messages in flatten_errors(value, prefix).items():
                flat.setdefault(field, []).extend(messages)
    else:
        flat.setdefault(prefix or "_schema", []).append(str(errors))
    return flat


def problem_response(
    status: int,
    title: str,
    detail: str,
    slug: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    request_id = g.get("request_id")
    if request_id:
        body["requestId"] = request_id
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _detail(exc: BaseException, problem: Problem) -> str:
    if problem.detail is not None:
        return problem.detail
    if isinstance(exc, ValidationFailed):
        return exc.message  # its str() repeats the per-field errors sent in `errors`
    return str(exc)


def describe_check(error: BaseException | None, timeout: float) -> str:
    """What /ready says of one dependency, from the error its ping raised."""
    if error is None:
        return "ok"
    check = problem_for(error).check
    return check.format(timeout=timeout) if check else f"error: {type(error).__name__}"


def statuses(error_types: tuple[type[BaseException], ...]) -> set[int]:
    """The HTTP statuses these error types are answered with (for the OpenAPI document)."""
    return {problem.status for exc_type, problem in ERROR_TABLE if exc_type in error_types}


def titles_by_status() -> dict[int, list[str]]:
    titles: dict[int, list[str]] = {}
    for _, problem in ERROR_TABLE:
        titles.setdefault(problem.status, []).append(problem.title)
    return titles


def error_response(exc: BaseException) -> Response:
    problem = problem_for(exc)
    if problem.status >= 500:
        # Full detail (and the trace for our own bugs) goes to the log, never to the client.
        log.error(
            "request failed: %s: %s",
            type(exc).__name__,
            exc,
            exc_info=problem is INTERNAL,
            extra={"status": problem.status},
        )
    errors = None
    if isinstance(exc, ValidationFailed):
        errors = flatten_errors(exc.errors)
    elif isinstance(exc, EdgeError) and exc.errors is not None:
        errors = exc.errors
    headers = dict(problem.headers)
    if problem.retry:
        headers["Retry-After"] = str(current_app.config["EDGE_SETTINGS"].retry_after)
    return problem_response(
        problem.status, problem.title, _detail(exc, problem), problem.slug, errors, headers
    )


def http_error_response(exc: HTTPException) -> Response:
    """Werkzeug's own errors (404, 405, 413, 415...) as problem+json, keeping Allow etc."""
    status = exc.code or 500
    headers = {
        name: value
        for name, value in exc.get_headers()
        if name.lower() not in ("content-type", "content-length")
    }
    return problem_response(
        status,
        exc.name,
        exc.description or exc.name,
        headers=headers,
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error_response)
    # Catch-all: nothing, not even our own bug, reaches the client as a trace or HTML.
    app.register_error_handler(Exception, error_response)
