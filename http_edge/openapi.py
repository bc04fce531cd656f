"""OpenAPI 3.1 document generated from the marshmallow schemas the workers validate with."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from http_edge.config import MAX_BODY_BYTES, EdgeSettings
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

STATUS_TEXT = {
    400: "Malformed body or query, or a field breaks a rule (see `errors`).",
    404: "No such record (or unknown path).",
    409: "An email already belongs to another user.",
    413: f"Body over {MAX_BODY_BYTES // 1024} KiB.",
    415: "Body is not application/json (UTF-8).",
    414: "URL longer than the server accepts (8 KiB request line).",
    422: "`userId` names no user.",
    502: "A service failed unexpectedly.",
    503: "RabbitMQ, MongoDB or a service is unavailable; see Retry-After.",
    504: "A service did not answer within RPC_TIMEOUT.",
}

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


def _headers(users: bool) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID_HEADER}
    if users:
        headers["X-Users-Version"] = USERS_VERSION_HEADER
    return headers


def _problem(status: int, users: bool) -> dict[str, Any]:
    # gunicorn answers 414 itself, before the app can add its headers.
    headers = _headers(users) if status != 414 else {}
    if status == 503:
        headers = {**headers, "Retry-After": RETRY_AFTER_HEADER}
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


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    success: dict[int, dict[str, Any]],
    errors: tuple[int, ...],
    body: str | None = None,
    parameters: list[Any] | None = None,
) -> dict[str, Any]:
    users = tag == "users"
    rpc_errors = (502, 503, 504)
    responses: dict[Any, Any] = {str(code): spec for code, spec in success.items()}
    for code in sorted({*errors, *rpc_errors, *((413, 415) if body else ())}):
        responses[str(code)] = _problem(code, users)
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {
        "in": "path",
        "name": name,
        "required": True,
        # No maxLength: a longer id is a 404 from the service, or a 414 from gunicorn.
        "schema": {"type": "string", "minLength": 1},
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
                "response echoes it. Errors are `application/problem+json`."
            )
        },
    )
    create_user = UserCreateV1Schema if settings.users_version == "v1" else UserCreateV2Schema
    spec.components.schema("Address", schema=AddressSchema)
    spec.components.schema("Item", schema=ItemSchema)
    spec.components.schema("UserCreate", schema=create_user)
    spec.components.schema("UserContactUpdate", schema=UserContactUpdateSchema)
    spec.components.schema("User", schema=UserDocumentSchema)
    spec.components.schema("OrderCreate", schema=OrderCreateSchema)
    spec.components.schema("OrderStatusUpdate", schema=OrderStatusUpdateSchema)
    spec.components.schema("OrderDetailsUpdate", schema=OrderDetailsUpdateSchema)
    spec.components.schema("Order", schema=OrderDocumentSchema)
    spec.components.schema("Problem", PROBLEM_SCHEMA)

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    user_id, order_id = _path_param("userId"), _path_param("orderId")
    spec.path(
        path="/users/",
        operations={
            "post": _operation(
                "createUser",
                "Create a user",
                "users",
                {201: _ok("The stored user.", ref("User"), True)},
                (400, 409),
                body=ref("UserCreate"),
            )
        },
    )
    spec.path(
        path="/users/{userId}",
        parameters=[user_id],
        operations={
            "get": _operation(
                "getUser",
                "Get a user",
                "users",
                {200: _ok("The user.", ref("User"), True)},
                (400, 404),
            ),
            "put": _operation(
                "updateUser",
                "Change a user's emails and/or delivery address",
                "users",
                {200: _ok("[before, after]", _pair("User"), True)},
                (400, 404, 409),
                body=ref("UserContactUpdate"),
            ),
        },
    )
    spec.path(
        path="/orders/",
        operations={
            "get": _operation(
                "listOrders",
                "List orders with a status (paged)",
                "orders",
                {
                    200: _ok(
                        "Orders, oldest first.", {"type": "array", "items": ref("Order")}, False
                    )
                },
                (400,),
                parameters=[{"in": "query", "schema": OrderListQuerySchema}],
            ),
            "post": _operation(
                "createOrder",
                "Create an order",
                "orders",
                {201: _ok("The stored order.", ref("Order"), False)},
                (400, 422),
                body=ref("OrderCreate"),
            ),
        },
    )
    spec.path(
        path="/orders/{orderId}",
        parameters=[order_id],
        operations={
            "get": _operation(
                "getOrder",
                "Get an order",
                "orders",
                {200: _ok("The order.", ref("Order"), False)},
                (400, 404),
            )
        },
    )
    spec.path(
        path="/orders/{orderId}/status",
        parameters=[order_id],
        operations={
            "put": _operation(
                "updateOrderStatus",
                "Change an order's status",
                "orders",
                {200: _ok("[before, after]", _pair("Order"), False)},
                (400, 404),
                body=ref("OrderStatusUpdate"),
            )
        },
    )
    spec.path(
        path="/orders/{orderId}/details",
        parameters=[order_id],
        operations={
            "put": _operation(
                "updateOrderDetails",
                "Change an order's emails and/or delivery address",
                "orders",
                {200: _ok("[before, after]", _pair("Order"), False)},
                (400, 404),
                body=ref("OrderDetailsUpdate"),
            )
        },
    )
    spec.path(
        path="/health",
        operations={
            "get": {
                "operationId": "health",
                "summary": "The edge process is alive",
                "tags": ["ops"],
                "responses": {"200": _ok("Alive.", {"type": "object"}, False)},
            }
        },
    )
    spec.path(
        path="/ready",
        operations={
            "get": {
                "operationId": "ready",
                "summary": "Broker, workers and database answer",
                "tags": ["ops"],
                "responses": {
                    "200": _ok("Ready.", {"type": "object"}, False),
                    "503": {**_problem(503, False), "description": "Not ready; see `checks`."},
                },
            }
        },
    )
    document = spec.to_dict()
    _tighten(document["components"]["schemas"])
    _finish_paths(document["paths"])
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


def _finish_paths(paths: dict[str, Any]) -> None:
    for (path, method, status), links in LINKS.items():
        paths[path][method]["responses"][status]["links"] = links
    for path, item in paths.items():
        if "{" in path:  # an id in the URL can make the request line too long for gunicorn
            for method, operation in item.items():
                if method != "parameters":
                    operation["responses"]["414"] = _problem(414, path.startswith("/users"))
