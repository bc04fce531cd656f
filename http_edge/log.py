"""Structured JSON logs (one object per line) carrying the request id of the current request."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import Any

from flask import g, has_request_context
from gunicorn.glogging import Logger as _GunicornLogger

# LogRecord attributes that are plumbing, not data worth a JSON key.
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": "http_edge",
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str | None = None) -> None:
    """Route the edge's loggers to stderr as JSON (idempotent; gunicorn has its own setup)."""
    logger = logging.getLogger("http_edge")
    if any(getattr(h, "_edge_json", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler._edge_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level or os.environ.get("LOG_LEVEL", "INFO").upper())
    logger.propagate = False


class GunicornLogger(_GunicornLogger):
    """gunicorn's logger without gunicorn's access log (`logger_class` in gunicorn_conf).

    The app logs every request itself, as JSON with its request id (context.py). gunicorn
    still built an access record for every request — all its atoms, a LogRecord — as soon
    as any `logconfig_dict` is set, only to drop it for want of a handler: 18 % of an
    edge worker's CPU per POST, in the edges and in the bench's baseline alike (py-spy,
    bench/results/profiles/2026-11-25-session4-edge-v1-gil-before.txt).
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None
