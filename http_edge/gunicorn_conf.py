"""gunicorn settings from the environment; defaults suit a 2-core machine.

Start: `gunicorn -c http_edge/gunicorn_conf.py http_edge.wsgi:app`
"""

from __future__ import annotations

import json
import os

import gunicorn.util


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = os.environ.get("EDGE_BIND", "127.0.0.1:8101")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = _int("GUNICORN_WORKERS", 2)
# Each thread keeps its own AMQP reply connection (http_edge/rpc.py). 2 x 4 measured
# best on 2 cores: more threads per process only add GIL contention (see docs/api.md).
threads = _int("GUNICORN_THREADS", 4)
# Must outlast the slowest RPC, or gunicorn kills a worker that is merely waiting.
timeout = max(30, int(float(os.environ.get("RPC_TIMEOUT", "10") or 10) * 3))
graceful_timeout = 15
keepalive = 5
# gunicorn's maximum: long percent-encoded ids reach the app (a JSON 404) instead of a 414.
limit_request_line = 8190
accesslog = None  # the app logs each request as JSON, with its request id
logger_class = "http_edge.log.GunicornLogger"  # gunicorn's logger minus its access log
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "http_edge.log.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


def _write_problem(sock, status_int: int, reason: str, mesg: str) -> None:  # noqa: ANN001
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


gunicorn.util.write_error = _write_problem
