"""edge-v1 with budget timestamps: `gunicorn ... bench.probes.edge:app` (bench.budget only).

Wraps the unchanged edge WSGI app and patches the edge's RPC client class in this process:
request in/out around the app, publish start/end, reply delivered by the broker, result
decoded. Cost: a few dict stores and one line written per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from bench.probes import now_us, write
from http_edge import rpc as edge_rpc
from http_edge.wsgi import app as edge_app

_local = threading.local()  # gthread: one request per thread at a time


def _current() -> dict[str, Any] | None:
    return getattr(_local, "record", None)


def _patch() -> None:
    channel = edge_rpc.ReplyChannel
    publish, on_reply, wait = channel.publish, channel._on_reply, channel.wait

    def timed_publish(self: Any, *args: Any, **kwargs: Any) -> str:
        started = now_us()
        correlation_id = publish(self, *args, **kwargs)
        record = _current()
        if record is not None:
            record.update(publish_start=started, published=now_us())
        return correlation_id

    def timed_on_reply(self: Any, message: Any) -> None:
        record = _current()
        if record is not None:
            record["reply"] = now_us()
        on_reply(self, message)

    def timed_wait(self: Any, correlation_id: str, deadline: float) -> Any:
        try:
            return wait(self, correlation_id, deadline)
        finally:
            record = _current()
            if record is not None:
                record["decoded"] = now_us()

    # The consumer callback is bound when a ReplyChannel is built: patch before any is.
    channel.publish, channel._on_reply, channel.wait = timed_publish, timed_on_reply, timed_wait


_patch()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    record: dict[str, Any] = {"rid": environ.get("HTTP_X_REQUEST_ID"), "edge_in": now_us()}
    _local.record = record
    try:
        body = list(edge_app(environ, start_response))  # Flask builds its body here anyway
    finally:
        record["edge_out"] = now_us()
        _local.record = None
    write("edge", record)
    return body
