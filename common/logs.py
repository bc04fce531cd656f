"""The one JSON log line of every process (edges and workers) and its start-up setup calls.

Each line: `time` (UTC, ms, `Z`), `level`, `service`, `logger`, `message`, `request_id`, then
`event`, `caller` and `trace_id` when known, then the record's extras and `exc`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextvars import ContextVar
from typing import Any

# What the current request or call is about; each thread or greenthread has its own.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
caller_var: ContextVar[str | None] = ContextVar("caller", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)
service_var: ContextVar[str | None] = ContextVar("service", default=None)

_CONTEXT = {
    "request_id": request_id_var,
    "caller": caller_var,
    "trace_id": trace_id_var,
    "service": service_var,
}
# LogRecord attributes that are plumbing, not data worth a JSON key.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", *_CONTEXT}
# A typed error logged with this prefix is an answer, not a fault: no traceback.
EXPECTED_PREFIX = "(expected)"
# os.getpid() is a system call per line; gunicorn forks its workers after import.
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def bind(**values: str | None) -> None:
    """Set request_id / caller / trace_id / service for what this (green)thread logs next."""
    for name, value in values.items():
        _CONTEXT[name].set(value)


def unbind() -> None:
    for var in _CONTEXT.values():
        var.set(None)


def format_time(created: float, msecs: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `service` names the process when no call is bound."""

    def __init__(self, service: str = "unknown") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        entry: dict[str, Any] = {
            "time": format_time(record.created, record.msecs),
            "level": record.levelname,
            "service": fields.get("service") or service_var.get() or self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": fields.get("request_id") or request_id_var.get(),
        }
        for name in ("caller", "trace_id"):
            value = fields.get(name) or _CONTEXT[name].get()
            if value:
                entry[name] = value
        for key, value in fields.items():
            if key not in _STANDARD and key[0] != "_":
                entry[key] = value
        entry["pid"] = _pid
        if record.exc_info and not _expected(record):
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _expected(record: logging.LogRecord) -> bool:
    return isinstance(record.msg, str) and record.msg.startswith(EXPECTED_PREFIX)


def skip_unused_record_fields() -> None:
    """Stop computing LogRecord fields this format never prints, process-wide (the logging
    HOWTO's "Optimization"): the caller's file and line (a stack walk per record) and the
    thread and process names. Call once at start-up of a process that logs only as JSON."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
