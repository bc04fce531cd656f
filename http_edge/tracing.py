"""The edge's traces: a server span per request continuing the client's `traceparent`, and a
client span per RPC whose traceparent travels in nameko's context data."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, g, request

from common import tracing
from common.logs import bind

SERVER = tracing.SpanKind.SERVER


def _before() -> None:
    rule = request.url_rule.rule if request.url_rule else request.path
    g.trace_span = tracing.ActiveSpan(
        f"{request.method} {rule}",
        SERVER,
        parent=request.headers,  # type: ignore[arg-type] - a case-insensitive mapping
        attributes={
            "http.request.method": request.method,
            "url.path": request.path,
            "http.route": rule,
        },
    )
    bind(trace_id=tracing.trace_id_of(g.trace_span.span))


def _after(response: Response) -> Response:
    active = g.get("trace_span")
    if active is not None:
        active.span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            active.span.set_status(tracing.Status(tracing.StatusCode.ERROR))
    return response


def _teardown(error: BaseException | None) -> None:
    active = g.pop("trace_span", None)
    if active is not None:
        active.close(error)


def register_tracing(app: Flask, service: str) -> None:
    """Trace every request of `app` (a process's first app sets up its TracerProvider)."""
    tracing.configure(service)
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)


@contextmanager
def rpc_span(service: str, method: str, context: MutableMapping[str, Any]) -> Iterator[None]:
    """A client span around one RPC; its traceparent goes into the call's context data."""
    attributes = {"rpc.system": "nameko", "rpc.service": service, "rpc.method": method}
    with tracing.outgoing(f"{service}.{method}", tracing.SpanKind.CLIENT, context, attributes):
        yield
