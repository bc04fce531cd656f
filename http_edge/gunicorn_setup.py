"""Start-up calls gunicorn_conf's hooks make: problem+json error pages and a socket read
timeout, both process-wide, so they are named calls rather than import side effects."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterable
from typing import Any

import gunicorn.util
from gunicorn.workers import gthread

from http_edge import lifecycle


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


def drain_on_term(server: Any, seconds: float) -> None:
    """On SIGTERM the master first turns /ready 503 for `seconds` while it keeps accepting
    and serving (a load balancer polling /ready stops sending), then does gunicorn's own
    graceful stop: listeners closed, workers finish in-flight requests (graceful_timeout).
    """
    lifecycle.share_flag()
    if server is None:  # the hook called without an arbiter (tests/unit)
        return
    stop = server.handle_term  # the arbiter looks its handlers up by name on each signal

    def handle_term() -> None:
        if not lifecycle.draining():
            lifecycle.start_draining()
            server.log.info("draining for %.1fs: /ready answers 503", seconds)
            time.sleep(seconds)  # the master only; workers keep serving meanwhile
        stop()

    server.handle_term = handle_term


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, except that a stopping worker closes its copy of the
    listeners as soon as it stops accepting. gunicorn closes them only once in-flight
    requests are done, so until then the kernel kept queueing new connections that nobody
    would accept, and reset them when the worker exited; now they are refused at once."""

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            for listener in self.sockets:
                listener.close()  # gunicorn's own close at exit then does nothing
