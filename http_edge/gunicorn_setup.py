"""Start-up calls gunicorn_conf's hooks make: problem+json error pages and a socket read
timeout, both process-wide, so they are named calls rather than import side effects."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterable
from typing import Any

import gunicorn.util


def _write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own errors (bad request line, oversized headers) as problem+json, not HTML."""
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status_int, "detail": mesg}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    gunicorn.util.write_nonblock(sock, head + body)


def install_problem_error_pages() -> None:
    """Make gunicorn write its own error responses as problem+json (run in the master)."""
    gunicorn.util.write_error = _write_problem


def set_read_timeout(listeners: Iterable[Any], seconds: float) -> None:
    """Bound every blocking read of a request (headers or body) to `seconds` between bytes.

    gunicorn reads a request in a worker thread with no timeout, so a client that sends
    part of a body and stops holds that thread for ever. SO_RCVTIMEO set on the listener is
    inherited by each accepted socket (Linux), and survives gunicorn's setblocking(True):
    a stalled read then fails with EAGAIN, which the app answers as 408 (http_edge.body).
    """
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    for listener in listeners:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
