"""RFC 9457 problem bodies for the errors nginx produces itself (never an HTML page)."""

from __future__ import annotations

import json

# status -> (title, detail); every error the local gateway can generate on its own.
GATEWAY_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("Bad Request", "The gateway could not parse the HTTP request."),
    404: ("Not Found", "No route matches this path; the API serves /users and /orders."),
    408: ("Request Timeout", "The request was not received in time."),
    413: ("Content Too Large", "The request body is over the 64 KiB limit."),
    414: ("URI Too Long", "The request URI is too long."),
    429: ("Too Many Requests", "Rate limit exceeded; retry after the Retry-After delay."),
    500: ("Internal Server Error", "The gateway failed to handle the request."),
    503: ("Service Unavailable", "No HTTP edge answered; retry after the Retry-After delay."),
    504: ("Gateway Timeout", "The HTTP edge did not answer in time."),
}

# Statuses whose problem response tells the client when to come back.
RETRY_AFTER_SECONDS = {429: 1, 503: 5}


def problem_json(status: int) -> str:
    title, detail = GATEWAY_PROBLEMS[status]
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        separators=(",", ":"),
    )
