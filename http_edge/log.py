"""The edge's logging setup: common.logs' JSON lines on stderr, and gunicorn's logger class."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger

from common.logs import JsonFormatter

SERVICE = "http_edge"


def configure_logging(level: str | None = None) -> None:
    """Route the edge's loggers to stderr as JSON (idempotent; gunicorn has its own setup)."""
    logger = logging.getLogger("http_edge")
    if any(getattr(h, "_edge_json", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(SERVICE))
    handler._edge_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level or os.environ.get("LOG_LEVEL", "INFO").upper())
    logger.propagate = False


class GunicornLogger(_GunicornLogger):
    """gunicorn's logger without gunicorn's access log (`logger_class` in gunicorn_conf).

    The app logs every request itself, as JSON with its request id (context.py); gunicorn
    would build an access record for every request only to drop it (docs/performance.md).
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(sys.exc_info()[1], BlockingIOError):
            # The read timeout (gunicorn_setup.set_read_timeout) cut a client that stopped
            # inside its headers: the client's doing, not a fault of ours.
            self.error_log.info(
                "client stalled while sending its request; connection closed",
                extra={"event": "client_stalled"},
            )
            return
        super().exception(msg, *args, **kwargs)
