"""Traces in workers: a span per RPC/event entrypoint continuing the caller's `traceparent`
(nameko context data), producer spans around event dispatch, and a span per pymongo command.

No OpenTelemetry instrumentation exists for nameko 2 or kombu; nameko copies a worker's context
data into every downstream call's headers, so the current span's traceparent is kept there.
"""

from __future__ import annotations

import weakref
from typing import Any

from nameko.constants import HEADER_PREFIX
from nameko.events import EventDispatcher, EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from pymongo import monitoring

from common import tracing
from common.logs import bind

SpanKind = tracing.SpanKind
# Readiness probes ping every few seconds: a trace each would bury the ones worth reading.
UNTRACED_METHODS = frozenset({"ping"})


def entrypoint_kind(entrypoint: Any) -> SpanKind | None:
    """SERVER for RPC, CONSUMER for events; None (no span) for timers, pings and the like."""
    if entrypoint.method_name in UNTRACED_METHODS:
        return None
    if isinstance(entrypoint, Rpc):
        return SpanKind.SERVER
    if isinstance(entrypoint, EventHandler):
        return SpanKind.CONSUMER
    return None


class Tracing(DependencyProvider):
    """Opens `<service>.<method>` for each RPC or event a worker handles, as a child of the
    caller's span, and leaves its traceparent in `worker_ctx.data` for downstream calls."""

    def __init__(self) -> None:
        self._active: weakref.WeakKeyDictionary[Any, tracing.ActiveSpan] = (
            weakref.WeakKeyDictionary()
        )

    def setup(self) -> None:
        tracing.configure(self.container.service_name)

    def stop(self) -> None:
        tracing.flush()

    def kill(self) -> None:
        tracing.flush()

    def worker_setup(self, worker_ctx: Any) -> None:
        entrypoint = worker_ctx.entrypoint
        kind = entrypoint_kind(entrypoint)
        if kind is None:
            return
        attributes = {
            "nameko.service": worker_ctx.service_name,
            "nameko.call_id": worker_ctx.call_id,
        }
        if kind is SpanKind.SERVER:
            attributes.update({"rpc.system": "nameko", "rpc.method": entrypoint.method_name})
        else:
            attributes.update(
                {
                    "messaging.system": "rabbitmq",
                    "messaging.source.service": entrypoint.source_service,
                    "messaging.event_type": entrypoint.event_type,
                }
            )
        active = tracing.ActiveSpan(
            f"{worker_ctx.service_name}.{entrypoint.method_name}",
            kind,
            parent=worker_ctx.data,
            attributes=attributes,
        )
        self._active[worker_ctx] = active
        tracing.inject(worker_ctx.data, active.span)  # downstream RPCs are its children
        bind(trace_id=tracing.trace_id_of(active.span))

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        active = self._active.pop(worker_ctx, None)
        if active is None:
            return
        error = exc_info[1] if exc_info is not None else None
        expected = getattr(worker_ctx.entrypoint, "expected_exceptions", ()) or ()
        if error is not None and isinstance(error, expected):
            # An answer the caller asked for (not found, invalid): not a fault of this span.
            active.span.set_attribute("error.type", type(error).__name__)
            error = None
        active.close(error)


class TracedEventDispatcher(EventDispatcher):
    """nameko's EventDispatcher, each dispatch in a producer span whose traceparent the event
    carries (as the `nameko.traceparent` header), so handlers continue the same trace."""

    def get_dependency(self, worker_ctx: Any) -> Any:
        service = self.container.service_name

        def dispatch(event_type: str, event_data: Any) -> None:
            carrier: dict[str, str] = {}
            attributes = {
                "messaging.system": "rabbitmq",
                "messaging.destination.name": self.exchange.name,
                "messaging.event_type": event_type,
            }
            name = f"{service}.dispatch {event_type}"
            with tracing.outgoing(name, SpanKind.PRODUCER, carrier, attributes):
                headers = self.get_message_headers(worker_ctx)
                headers.update({f"{HEADER_PREFIX}.{k}": v for k, v in carrier.items()})
                self.publisher.publish(
                    event_data, exchange=self.exchange, routing_key=event_type,
                    extra_headers=headers,
                )  # fmt: skip

        return dispatch


class MongoCommandSpans(monitoring.CommandListener):
    """A client span per pymongo command issued inside a traced call (never a trace of its
    own: timers and health pings stay out). No statement is recorded: it holds user data."""

    def __init__(self) -> None:
        self._spans: dict[tuple[Any, int], tracing.Span] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not tracing.recording():
            return
        collection = event.command.get(event.command_name)
        attributes = {
            "db.system.name": "mongodb",
            "db.namespace": event.database_name,
            "db.operation.name": event.command_name,
        }
        name = event.command_name
        if isinstance(collection, str):
            attributes["db.collection.name"] = collection
            name = f"{event.command_name} {collection}"
        span = tracing.tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        self._spans[(event.connection_id, event.request_id)] = span

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        span = self._spans.pop((event.connection_id, event.request_id), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        span = self._spans.pop((event.connection_id, event.request_id), None)
        if span is not None:
            span.set_status(tracing.Status(tracing.StatusCode.ERROR, str(event.failure)[:200]))
            span.end()
