"""Per-call logging for workers: binds the caller's request id and logs one line per call.

The line format is common.logs' (config.yaml's LOGGING); the request id lives in a
ContextVar, so each greenthread logs its own call's id.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from nameko.extensions import DependencyProvider

from common.logs import bind, request_id_var, skip_unused_record_fields, unbind
from common.tracing import trace_id_in

_started: ContextVar[float | None] = ContextVar("started", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestLogging(DependencyProvider):
    """Binds the caller's request id to the worker and logs one line per entrypoint call."""

    log = logging.getLogger("workers.calls")

    def setup(self) -> None:
        # Workers log only through common.logs' JSON, which never prints these fields.
        skip_unused_record_fields()

    def worker_setup(self, worker_ctx: Any) -> None:
        data = worker_ctx.data
        bind(
            request_id=data.get("request_id"),
            caller=data.get("caller"),
            trace_id=trace_id_in(data),  # workers.runtime.tracing rebinds a new root's
            service=worker_ctx.service_name,
        )
        _started.set(time.perf_counter())

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = _started.get()
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        outcome = "ok" if exc_info is None else type(exc_info[1]).__name__
        self.log.info(
            "%s.%s %s",
            worker_ctx.service_name,
            worker_ctx.entrypoint.method_name,
            outcome,
            extra={
                "event": "call",
                "entrypoint": worker_ctx.entrypoint.method_name,
                "outcome": outcome,
                "duration_ms": elapsed_ms,
            },
        )

    def worker_teardown(self, worker_ctx: Any) -> None:
        unbind()
        _started.set(None)
