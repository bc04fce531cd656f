"""The Nameko-native gateway peer: what a team writing the gateway "the nameko way" gets.

Written like nameko-examples' gateway service: one nameko service whose `nameko.web`
`@http` handlers parse the JSON body and call the users (or orders) service through an
`RpcProxy`, served by `nameko run` (one process, eventlet's WSGI server) against the
bench's workers.
Errors come back as the workers' own exception classes (they deserialize to instances) and
are answered as problem+json, so a 4xx here costs what it costs on our edge.
"""

from __future__ import annotations

import json
from typing import Any

from nameko.rpc import RpcProxy
from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from workers.exceptions import (
    EmailTaken,
    NotFound,
    ServiceError,
    StorageUnavailable,
    UnknownUser,
    UpdateConflict,
    ValidationFailed,
)

SERVICE = "users_v1"
ORDERS = "orders"
# The SPEC's status for each domain error the peer can be handed back.
STATUS: tuple[tuple[type[ServiceError], int, str], ...] = (
    (ValidationFailed, 400, "Validation failed"),
    (NotFound, 404, "Not found"),
    (EmailTaken, 409, "Email already used"),
    (UnknownUser, 422, "Order names an unknown user"),
    (UpdateConflict, 409, "Update conflict"),
    (StorageUnavailable, 503, "Storage unavailable"),
)


def _json(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype=mimetype)


def problem(status: int, title: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status}
    return _json(body, status, "application/problem+json")


def json_body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when it is not one (answered 400)."""
    try:
        body = json.loads(request.get_data(as_text=True))
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def answer_error(error: ServiceError) -> Response:
    for kind, status, title in STATUS:
        if isinstance(error, kind):
            return problem(status, title)
    return problem(400, type(error).__name__)


class NamekoGatewayPeer:
    name = "bench_nameko_peer"
    users = RpcProxy(SERVICE)
    orders = RpcProxy(ORDERS)

    @http("GET", "/health")
    def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    @http("POST", "/users/")
    def create_user(self, request: Request) -> Response:
        body = json_body(request)
        if body is None:
            return problem(400, "Body must be a JSON object")
        try:
            return _json(self.users.create(body), 201)
        except ServiceError as error:
            return answer_error(error)

    @http("GET", "/users/<string:user_id>")
    def get_user(self, request: Request, user_id: str) -> Response:
        try:
            return _json(self.users.get(user_id))
        except ServiceError as error:
            return answer_error(error)

    @http("PUT", "/users/<string:user_id>")
    def update_user(self, request: Request, user_id: str) -> Response:
        body = json_body(request)
        if body is None:
            return problem(400, "Body must be a JSON object")
        try:
            return _json(self.users.update(user_id, body))
        except ServiceError as error:
            return answer_error(error)

    @http("POST", "/orders/")
    def create_order(self, request: Request) -> Response:
        body = json_body(request)
        if body is None:
            return problem(400, "Body must be a JSON object")
        try:
            return _json(self.orders.create(body), 201)
        except ServiceError as error:
            return answer_error(error)
