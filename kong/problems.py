"""RFC 9457 problem bodies for the errors nginx produces itself (never an HTML page)."""

from __future__ import annotations

import json

from common.defaults import MAX_BODY_BYTES

# status -> (title, detail); every error the local gateway can generate on its own.
GATEWAY_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("Bad Request", "The gateway could not parse the HTTP request."),
    404: ("Not Found", "No route matches this path; the API serves /users and /orders."),
    405: ("Method Not Allowed", "The gateway does not accept this method."),
    408: ("Request Timeout", "The request was not received in time."),
    411: ("Length Required", "Send a Content-Length or a chunked body."),
    413: (
        "Content Too Large",
        f"The request body is over the {MAX_BODY_BYTES // 1024} KiB limit.",
    ),
    414: ("URI Too Long", "The request URI is too long."),
    401: ("Unauthorized", "Unauthorized"),  # Kong's acl message for a failed authentication
    403: ("Forbidden", "You cannot consume this service"),  # Kong's acl message
    429: ("Too Many Requests", "API rate limit exceeded"),  # Kong's rate-limiting message
    431: ("Request Header Fields Too Large", "A request header or cookie is too large."),
    500: ("Internal Server Error", "The gateway failed to handle the request."),
    501: ("Not Implemented", "Transfer-Encoding other than chunked is not supported."),
    503: ("Service Unavailable", "No HTTP edge answered; retry after the Retry-After delay."),
    504: ("Gateway Timeout", "The HTTP edge did not answer in time."),
    505: ("HTTP Version Not Supported", "The gateway speaks HTTP/1.0 and HTTP/1.1."),
}

# nginx's own codes -> what the client is told: 494 is nginx's "header too large" (sent as
# a 400 by default) and 502 means "could not reach any edge", a 503 with Retry-After.
NGINX_STATUS_ALIASES = {494: 431, 502: 503}

# Statuses whose problem response tells the client when to come back.
RETRY_AFTER_SECONDS = {429: 1, 503: 5}


# Kong's own errors (kong.response.error) through kong.conf's error_template_json: Kong fills
# in only the message and the request id, so `title` is fixed and `status` is absent.
ERROR_TEMPLATE_JSON = (
    '{"type":"about:blank","title":"Refused by the gateway","detail":"%s","requestId":"%s"}\n'
)


def problem_body(status: int, detail: str | None = None, request_id: str | None = None) -> dict:
    """The project's problem+json shape; `detail` defaults to the table's."""
    title, default_detail = GATEWAY_PROBLEMS[status]
    body: dict = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = default_detail if detail is None else detail
    if request_id is not None:
        body["requestId"] = request_id
    return body


def problem_json(status: int, request_id: str) -> str:
    """The body for `status`; `request_id` is spliced in as is (an nginx variable)."""
    return json.dumps(problem_body(status, request_id=request_id), separators=(",", ":"))
