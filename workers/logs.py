"""Structured JSON logs that carry the request id of the call being served."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from nameko.extensions import DependencyProvider

# Under `nameko run` eventlet patches threading, so this is per-greenthread: each worker
# sees only its own request id.
_current = threading.local()


def current_request_id() -> str | None:
    return getattr(_current, "request_id", None)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        if isinstance(record.msg, str) and record.msg.startswith("(expected)"):
            # A typed ServiceError is an answer, not a fault: keep the line, drop the traceback.
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and extras."""

    STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        entry.update(
            {k: v for k, v in vars(record).items() if k not in self.STANDARD and k[0] != "_"}
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RequestLogging(DependencyProvider):
    """Binds the caller's request id to the worker and logs one line per entrypoint call."""

    log = logging.getLogger("workers.calls")

    def worker_setup(self, worker_ctx: Any) -> None:
        _current.request_id = worker_ctx.data.get("request_id")
        _current.started = time.perf_counter()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        elapsed_ms = round((time.perf_counter() - getattr(_current, "started", 0.0)) * 1000, 2)
        outcome = "ok" if exc_info is None else type(exc_info[1]).__name__
        self.log.info(
            "%s.%s %s",
            worker_ctx.service_name,
            worker_ctx.entrypoint.method_name,
            outcome,
            extra={
                "service": worker_ctx.service_name,
                "entrypoint": worker_ctx.entrypoint.method_name,
                "outcome": outcome,
                "duration_ms": elapsed_ms,
            },
        )

    def worker_teardown(self, worker_ctx: Any) -> None:
        _current.request_id = None
