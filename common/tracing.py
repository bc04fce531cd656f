"""OpenTelemetry for every process: one TracerProvider from env, W3C context in and out of dicts.

Env: `OTEL_SDK_DISABLED=true` (no tracing), `OTEL_SERVICE_NAME`, `TRACE_SAMPLE_RATIO` (0..1,
parent-based), `TRACES_DIR` (JSON lines in `<dir>/<service>.jsonl`),
`OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/HTTP to a collector). How to read them: docs/operations.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
    SpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from common import defaults

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PROPAGATOR = TraceContextTextMapPropagator()
_NOOP = trace.NoOpTracerProvider()
_provider: trace.TracerProvider = _NOOP
# The provider's one tracer: the SDK's get_tracer costs ~10 us a call (a warnings filter
# and two scope objects each time), as much as a fifth of a span.
_tracer: trace.Tracer = _NOOP.get_tracer("micro")
_lock = threading.Lock()
_configured = False

__all__ = ["Span", "SpanKind", "Status", "StatusCode", "configure", "install", "tracer"]


class JsonLinesExporter(SpanExporter):
    """One span per line (trace_id, span_id, parent_span_id, name, kind, times, attributes,
    links), appended with one write per batch so processes sharing the file never interleave."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span), default=str) + "\n" for span in spans)
        try:
            os.write(self.fd, lines.encode())
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as plain JSON values (ids in the W3C hex form)."""
    ctx = span.get_span_context()
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [
            {
                "trace_id": f"{link.context.trace_id:032x}",
                "span_id": f"{link.context.span_id:016x}",
            }
            for link in span.links
        ],  # fmt: skip
    }


def sample_ratio(env: Mapping[str, str]) -> float:
    """$TRACE_SAMPLE_RATIO clamped to 0..1 (empty or unset: common.defaults)."""
    raw = str(env.get("TRACE_SAMPLE_RATIO") or "").strip()
    return min(1.0, max(0.0, float(raw))) if raw else defaults.TRACE_SAMPLE_RATIO


def sample_bound(ratio: float) -> int:
    """TraceIdRatioBased's bound: a new trace is sampled when its id's low 64 bits are below."""
    return TraceIdRatioBased.get_bound_for_rate(ratio)


def _processors(service: str, env: Mapping[str, str]) -> list[SpanProcessor]:
    processors: list[SpanProcessor] = []
    traces_dir = env.get("TRACES_DIR", "").strip()
    if traces_dir:
        exporter = JsonLinesExporter(Path(traces_dir) / f"{service}.jsonl")
        processors.append(BatchSpanProcessor(exporter))
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        # Imported only when used: it pulls in protobuf; it reads the OTEL_EXPORTER_* env.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    return processors


def build_provider(default_service: str, env: Mapping[str, str]) -> TracerProvider | None:
    """The TracerProvider `env` asks for (module docstring), or None when tracing is off."""
    if env.get("OTEL_SDK_DISABLED", "false").strip().lower() == "true":
        return None
    service = env.get("OTEL_SERVICE_NAME", "").strip() or default_service
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio(env))),
    )
    for processor in _processors(service, env):
        provider.add_span_processor(processor)
    return provider


def configure(default_service: str) -> None:
    """Give this process its TracerProvider from env (once; later calls change nothing)."""
    with _lock:
        if not _configured:
            install(build_provider(default_service, os.environ))


def install(provider: trace.TracerProvider | None) -> trace.TracerProvider:
    """Use `provider` (tests: one with an in-memory exporter; None: off) instead of what
    `configure` would set up; returns the one used before."""
    global _provider, _configured, _tracer
    chosen = provider or _NOOP
    # The tracer from the same provider, made before either is published.
    previous, _provider, _tracer, _configured = _provider, chosen, chosen.get_tracer("micro"), True
    return previous


def flush() -> None:
    if isinstance(_provider, TracerProvider):
        _provider.force_flush(timeout_millis=5000)


def tracer() -> trace.Tracer:
    return _tracer


# -- W3C trace context in plain dicts (HTTP headers, nameko context data) ---------------------
def extract(carrier: Mapping[str, Any]) -> otel_context.Context:
    """The remote parent named by `carrier["traceparent"]` (and tracestate), if valid."""
    wanted = (TRACEPARENT, TRACESTATE)  # HTTP header names come in any case
    return _PROPAGATOR.extract({k.lower(): v for k, v in carrier.items() if k.lower() in wanted})


def inject(carrier: MutableMapping[str, Any], span: Span | None = None) -> None:
    """Write `span`'s (default: the current span's) traceparent and tracestate into `carrier`."""
    ctx = trace.set_span_in_context(span) if span is not None else None
    carrier.pop(TRACESTATE, None)
    _PROPAGATOR.inject(carrier, context=ctx)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get(TRACEPARENT)


def recording() -> bool:
    """True inside a span that is being recorded (sampled, tracing on)."""
    return trace.get_current_span().is_recording()


def trace_id_of(span: Span | None = None) -> str | None:
    """The hex trace id of `span` (default: the current one), None outside any trace."""
    ctx = (span or trace.get_current_span()).get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def trace_id_in(carrier: Mapping[str, Any]) -> str | None:
    """The trace id a carrier's traceparent names (what a log line binds before any span)."""
    return trace_id_of(trace.get_current_span(extract(carrier)))


class ActiveSpan:
    """A span made current until `close()`: for hooks that open and close in two calls."""

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        parent: Mapping[str, Any] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        parent_ctx = extract(parent) if parent is not None else None
        self.span = tracer().start_span(name, context=parent_ctx, kind=kind, attributes=attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def close(self, error: BaseException | None = None) -> None:
        if error is not None:
            record_error(self.span, error)
        otel_context.detach(self._token)
        self.span.end()


def record_error(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))


@contextlib.contextmanager
def resumed(traceparent: str | None) -> Iterator[None]:
    """Run the block as part of the trace `traceparent` names (e.g. one stored with an event)."""
    if not traceparent:
        yield
        return
    token = otel_context.attach(extract({TRACEPARENT: traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def outgoing(
    name: str,
    kind: SpanKind,
    carrier: MutableMapping[str, Any],
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A client/producer span around the block, its traceparent written into `carrier`."""
    with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as span:
        inject(carrier, span)
        yield span
