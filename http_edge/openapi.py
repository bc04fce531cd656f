"""OpenAPI 3.1 document generated from the marshmallow schemas the workers validate with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService

from http_edge.config import MAX_BODY_BYTES, EdgeSettings
from http_edge.problems import EdgeError, statuses, titles_by_status
from http_edge.rpc import BrokerUnavailable
from schemas.fields import AddressSchema, ItemSchema
from schemas.orders import (
    OrderCreateSchema,
    OrderDetailsUpdateSchema,
    OrderDocumentSchema,
    OrderListQuerySchema,
    OrderStatusUpdateSchema,
)
from schemas.users import (
    UserContactUpdateSchema,
    UserCreateV1Schema,
    UserCreateV2Schema,
    UserDocumentSchema,
)
from workers.exceptions import (
    EmailTaken,
    OrderNotFound,
    StorageUnavailable,
    StoredDocumentInvalid,
    UnknownUser,
    UpdateConflict,
    UserNotFound,
    ValidationFailed,
)

# Every schema is closed (`additionalProperties: false`): apispec exports marshmallow's
# default `unknown=RAISE`, and a stored document has exactly the SPEC §1 fields.
# `@validates_schema` "send at least one field" rules, which marshmallow cannot export.
AT_LEAST_ONE = ("UserContactUpdate", "OrderDetailsUpdate")
EMAIL_LISTS = (
    ("UserCreate", "emails"),
    ("UserContactUpdate", "emails"),
    ("User", "emails"),
    ("OrderCreate", "userEmails"),
    ("OrderDetailsUpdate", "userEmails"),
    ("Order", "userEmails"),
)

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Per-field messages; nested fields use dotted names.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "requestId": {"type": "string"},
        "checks": {
            "type": "object",
            "description": "/ready only: state of each dependency.",
            "additionalProperties": {"type": "string"},
        },
    },
}

# Statuses werkzeug or gunicorn answer themselves (not in ERROR_TABLE), and what they mean.
HTTP_STATUS_TEXT = {
    404: "or no such path",
    408: "The body stopped arriving (EDGE_READ_TIMEOUT).",
    413: f"Body over {MAX_BODY_BYTES // 1024} KiB.",
    414: "URL longer than the server accepts (8 KiB request line).",
    415: "Body is not application/json (UTF-8).",
    429: "Over the consumer's rate limit, at the gateway (see Retry-After).",
}
# Every /users and /orders operation needs one of these (SPEC §7); the open paths none.
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "apikey",
        "description": "An application's API key (`micro-auth keys create`).",
    },
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An end user's RS256 token (`sub` = their userId, `exp` required), "
        "signed by a trusted issuer (`micro-auth token`). An end user reaches only their "
        "own user and orders and never changes an order's status.",
    },
}
SECURITY = [{"apiKey": []}, {"bearerAuth": []}]  # either one
AUTH_STATUSES = (401, 403, 429)
# Errors every RPC can end in, whatever the operation.
RPC_ERRORS = (StorageUnavailable, BrokerUnavailable, UnknownService, RpcTimeout, RemoteError)
BODY_STATUSES = (408, 413, 415)


def _status_text() -> dict[int, str]:
    """One description per status, from ERROR_TABLE's titles (plus the HTTP-level ones)."""
    text = {status: "; ".join(titles) for status, titles in titles_by_status().items()}
    for status, extra in HTTP_STATUS_TEXT.items():
        text[status] = f"{text[status]}; {extra}" if status in text else extra
    if 503 in text:
        text[503] += "; see Retry-After"
    return {status: value.rstrip(".") + "." for status, value in text.items()}


STATUS_TEXT = _status_text()

REQUEST_ID_HEADER = {
    "description": "The request's X-Request-ID (echoed) or a generated uuid4.",
    "required": True,
    "schema": {"type": "string"},
}
USERS_VERSION_HEADER = {
    "description": "Which users generation served the request.",
    "required": True,
    "schema": {"type": "string", "enum": ["v1", "v2"]},
}
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before retrying.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


WWW_AUTHENTICATE_HEADER = {
    "description": 'The challenge: `Key realm="kong"`.',
    "required": True,
    "schema": {"type": "string"},
}
# Kong rate-limiting's headers on a 429 (the gateway's; an edge never limits by itself).
RATE_LIMIT_HEADERS = {
    name: {"description": text, "required": True, "schema": {"type": "string"}}
    for name, text in (
        ("RateLimit-Limit", "Requests allowed in the window."),
        ("RateLimit-Remaining", "Requests left in the window."),
        ("RateLimit-Reset", "Seconds until the window resets."),
    )
}


def _headers(users: bool) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID_HEADER}
    if users:
        headers["X-Users-Version"] = USERS_VERSION_HEADER
    return headers


def _problem(status: int, users: bool) -> dict[str, Any]:
    # gunicorn answers 414 itself, before the app can add its headers.
    headers = _headers(users) if status != 414 else {}
    if status in (429, 503):
        headers = {**headers, "Retry-After": RETRY_AFTER_HEADER}
    if status == 429:  # the gateway's answer: no X-Users-Version, no edge served it
        headers = {"X-Request-ID": REQUEST_ID_HEADER, "Retry-After": RETRY_AFTER_HEADER}
        headers.update(RATE_LIMIT_HEADERS)
    if status == 401:
        headers = {**headers, "WWW-Authenticate": WWW_AUTHENTICATE_HEADER}
    return {
        "description": STATUS_TEXT[status],
        "headers": headers,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _ok(description: str, schema: Any, users: bool) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _headers(users),
        "content": {"application/json": {"schema": schema}},
    }


def _pair(ref: str) -> dict[str, Any]:
    item = {"$ref": f"#/components/schemas/{ref}"}
    return {
        "type": "array",
        "description": "[before, after]",
        # Not prefixItems: schemathesis 4 mis-bundles it; two items of one schema say the same.
        "items": item,
        "minItems": 2,
        "maxItems": 2,
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Operation:
    """One row of the API: its errors are types, answered with ERROR_TABLE's statuses."""

    method: str
    path: str
    operation_id: str
    summary: str
    success: int
    description: str
    response: dict[str, Any]
    errors: tuple[type[BaseException], ...]
    body: str | None = None  # component name of the JSON request body
    query: type | None = None  # marshmallow schema of the query string

    @property
    def tag(self) -> str:
        return self.path.strip("/").split("/")[0]


READ_USER = (ValidationFailed, UserNotFound, StoredDocumentInvalid)
READ_ORDER = (ValidationFailed, OrderNotFound, StoredDocumentInvalid)
OPERATIONS = (
    Operation("post", "/users/", "createUser", "Create a user", 201, "The stored user.",
              ref("User"), (EdgeError, ValidationFailed, EmailTaken), body="UserCreate"),
    Operation("get", "/users/{userId}", "getUser", "Get a user", 200, "The user.",
              ref("User"), READ_USER),
    Operation("put", "/users/{userId}", "updateUser",
              "Change a user's emails and/or delivery address", 200, "[before, after]",
              _pair("User"), (*READ_USER, EdgeError, EmailTaken, UpdateConflict),
              body="UserContactUpdate"),
    Operation("get", "/orders/", "listOrders", "List orders with a status (paged)", 200,
              "Orders, oldest first.", {"type": "array", "items": ref("Order")},
              (ValidationFailed, StoredDocumentInvalid), query=OrderListQuerySchema),
    Operation("post", "/orders/", "createOrder", "Create an order", 201, "The stored order.",
              ref("Order"), (EdgeError, ValidationFailed, UnknownUser), body="OrderCreate"),
    Operation("get", "/orders/{orderId}", "getOrder", "Get an order", 200, "The order.",
              ref("Order"), READ_ORDER),
    Operation("put", "/orders/{orderId}/status", "updateOrderStatus",
              "Change an order's status", 200, "[before, after]", _pair("Order"),
              (*READ_ORDER, EdgeError), body="OrderStatusUpdate"),
    Operation("put", "/orders/{orderId}/details", "updateOrderDetails",
              "Change an order's emails and/or delivery address", 200, "[before, after]",
              _pair("Order"), (*READ_ORDER, EdgeError), body="OrderDetailsUpdate"),
)  # fmt: skip


def _operation(op: Operation) -> dict[str, Any]:
    users = op.tag == "users"
    codes = statuses(op.errors + RPC_ERRORS) | (set(BODY_STATUSES) if op.body else set())
    codes |= set(AUTH_STATUSES)
    responses: dict[str, Any] = {str(op.success): _ok(op.description, op.response, users)}
    for code in sorted(codes):
        responses[str(code)] = _problem(code, users)
    if "{" in op.path:  # an id in the URL can make the request line too long for gunicorn
        responses["414"] = _problem(414, users)
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": SECURITY,
        "responses": responses,
    }
    if op.body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(op.body)}},
        }
    if op.query:
        operation["parameters"] = [{"in": "query", "schema": op.query}]
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {
        "in": "path",
        "name": name,
        "required": True,
        # No maxLength: a longer id is a 404 from the service, or a 414 from gunicorn.
        "schema": {"type": "string", "minLength": 1},
    }


OPS_PATHS = {
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "The edge process is alive",
            "tags": ["ops"],
            "security": [],
            "responses": {"200": _ok("Alive.", {"type": "object"}, False)},
        }
    },
    "/ready": {
        "get": {
            "operationId": "ready",
            "summary": "Broker, workers and database answer",
            "tags": ["ops"],
            "security": [],
            "responses": {
                "200": _ok("Ready.", {"type": "object"}, False),
                "503": {**_problem(503, False), "description": "Not ready; see `checks`."},
            },
        }
    },
}


def build_openapi(settings: EdgeSettings) -> dict[str, Any]:
    spec = APISpec(
        title="Users and orders API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                f"Served by the HTTP edge for users generation **{settings.users_version}** "
                "(the gateway routes `/users` between v1 and v2; `X-Users-Version` on a "
                "request is for the gateway, this edge always serves its own generation). "
                "Send `X-Request-ID` to trace a request through the services; every "
                "response echoes it. Errors are `application/problem+json`. Every /users "
                "and /orders operation needs an `apikey` header or an `Authorization: "
                "Bearer` end-user token (**Authorize** above); the edge checks them itself."
            )
        },
    )
    create_user = UserCreateV1Schema if settings.users_version == "v1" else UserCreateV2Schema
    for name, schema in (
        ("Address", AddressSchema),
        ("Item", ItemSchema),
        ("UserCreate", create_user),
        ("UserContactUpdate", UserContactUpdateSchema),
        ("User", UserDocumentSchema),
        ("OrderCreate", OrderCreateSchema),
        ("OrderStatusUpdate", OrderStatusUpdateSchema),
        ("OrderDetailsUpdate", OrderDetailsUpdateSchema),
        ("Order", OrderDocumentSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    for path, operations in {**paths, **OPS_PATHS}.items():
        params = [_path_param(name) for name in re.findall(r"{(\w+)}", path)]
        spec.path(path=path, parameters=params or None, operations=operations)
    document = spec.to_dict()
    _tighten(document["components"]["schemas"])
    _add_links(document["paths"])
    return document


def _tighten(schemas: dict[str, Any]) -> None:
    """Add what marshmallow's metadata cannot say: an update must change something."""
    for name in AT_LEAST_ONE:
        schemas[name]["minProperties"] = 1
    # Repeated emails are refused (case-insensitively; JSON Schema can only say "exactly").
    for name, prop in EMAIL_LISTS:
        schemas[name]["properties"][prop]["uniqueItems"] = True


def _link(operation_id: str, param: str, pointer: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": {param: f"$response.body#/{pointer}"}}


# Let clients (and schemathesis' stateful phase) follow a created record to its operations.
LINKS = {
    ("/users/", "post", "201"): {
        "GetUser": _link("getUser", "userId", "userId"),
        "UpdateUser": _link("updateUser", "userId", "userId"),
    },
    ("/orders/", "post", "201"): {
        "GetOrder": _link("getOrder", "orderId", "orderId"),
        "UpdateOrderStatus": _link("updateOrderStatus", "orderId", "orderId"),
        "UpdateOrderDetails": _link("updateOrderDetails", "orderId", "orderId"),
    },
}


def _add_links(paths: dict[str, Any]) -> None:
    for (path, method, status), links in LINKS.items():
        paths[path][method]["responses"][status]["links"] = links
