"""Per-request plumbing: X-Request-ID, X-Users-Version, access log and the RPC helper."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request

from common.logs import bind, unbind
from common.request_id import accept_request_id
from http_edge.config import EdgeSettings
from http_edge.rpc import RpcClient
from http_edge.tracing import rpc_span

log = logging.getLogger("http_edge.access")


def settings() -> EdgeSettings:
    return current_app.config["EDGE_SETTINGS"]


def rpc_client() -> RpcClient:
    return current_app.extensions["rpc"]


def call(service: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """RPC to `service.method` carrying this request's id, caller and trace (nameko headers)."""
    context = {"request_id": g.request_id, "caller": g.get("caller")}
    with rpc_span(service, method, context):  # adds traceparent to the context
        return rpc_client().call(service, method, *args, context=context, **kwargs)


def users_service() -> str:
    return settings().users_service


def _before() -> None:
    g.started = time.perf_counter()
    # The gateway applies the same rule; an edge reached directly must not trust more.
    g.request_id = accept_request_id(request.headers.get("X-Request-ID"))
    bind(request_id=g.request_id)


def _after(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id") or str(uuid.uuid4())
    path = request.path
    if path == "/users" or path.startswith("/users/"):
        response.headers["X-Users-Version"] = settings().users_version
    started = g.get("started")
    log.info(
        "%s %s %s",
        request.method,
        path,
        response.status_code,
        extra={
            "event": "request",
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        },
    )
    return response


def _teardown(_: BaseException | None) -> None:
    unbind()


def register_request_hooks(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)
