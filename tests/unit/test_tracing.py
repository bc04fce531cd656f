"""Trace propagation helpers: the edge continues a client's traceparent and hands its RPC span
to the worker; a worker continues it and hands its dispatch span to the event; a pending event
keeps its update's trace for the relay; spans are written as JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from unittest.mock import Mock

import pytest
from kombu import Exchange
from nameko.containers import WorkerContext
from nameko.events import EventHandler
from nameko.rpc import Rpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link

from common import tracing
from common.logs import JsonFormatter
from tests.support.data import address
from tests.support.edge_fakes import FakeRpc, build_app
from workers.exceptions import UserNotFound
from workers.runtime.tracing import TracedEventDispatcher, Tracing
from workers.users import domain as users_domain

TRACE_ID = "12" * 16  # low-entropy ids: the secrets scan flags random-looking hex
CLIENT_SPAN = "34" * 8
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Spans of this test, kept in memory (the process's own provider is put back after)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.install(provider)
    yield exporter
    tracing.install(previous)


def hex_ids(span) -> tuple[str, str, str | None]:
    ctx = span.get_span_context()
    parent = f"{span.parent.span_id:016x}" if span.parent else None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", parent


def parse(traceparent: str) -> tuple[str, str]:
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


# -- the edge --------------------------------------------------------------------------
def access_lines(client, **headers: str) -> list[dict]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("http_edge"))
    logger = logging.getLogger("http_edge.access")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        client.get("/users/u-1", headers=headers)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_edge_continues_the_clients_trace_and_sends_its_rpc_span(exported):
    fake = FakeRpc(reply={"userId": "u-1"})
    lines = access_lines(build_app(fake).test_client(), traceparent=TRACEPARENT)

    server, client = sorted(exported.get_finished_spans(), key=lambda s: s.kind.name != "SERVER")
    assert (server.name, server.kind.name) == ("GET /users/<user_id>", "SERVER")
    assert hex_ids(server)[::2] == (TRACE_ID, CLIENT_SPAN)
    assert (client.name, client.kind.name) == ("users_v1.get", "CLIENT")
    assert hex_ids(client)[2] == hex_ids(server)[1]
    # The worker is told the RPC span as its parent, in the call's context data.
    assert parse(fake.last.context["traceparent"]) == hex_ids(client)[:2]
    assert server.attributes["http.response.status_code"] == 200
    assert [line["trace_id"] for line in lines] == [TRACE_ID]


@pytest.mark.parametrize("sent", [None, "garbage", f"00-{'0' * 32}-{CLIENT_SPAN}-01"])
def test_the_edge_starts_a_trace_when_the_client_sent_none_or_an_invalid_one(exported, sent):
    fake = FakeRpc(reply={"userId": "u-1"})
    headers = {"traceparent": sent} if sent else {}
    lines = access_lines(build_app(fake).test_client(), **headers)

    server = next(s for s in exported.get_finished_spans() if s.kind.name == "SERVER")
    trace_id, _, parent = hex_ids(server)
    assert parent is None and trace_id != "0" * 32
    assert parse(fake.last.context["traceparent"])[0] == trace_id
    assert [line["trace_id"] for line in lines] == [trace_id]


def test_tracing_off_passes_the_clients_trace_on_unchanged_and_starts_none(exported):
    tracing.install(None)
    fake = FakeRpc(reply={"userId": "u-1"})
    lines = access_lines(build_app(fake).test_client(), traceparent=TRACEPARENT)
    assert fake.last.context["traceparent"] == TRACEPARENT
    assert lines[0]["trace_id"] == TRACE_ID
    lines = access_lines(build_app(fake).test_client())
    assert "traceparent" not in fake.last.context  # the caller and request id still travel
    assert "trace_id" not in lines[0]
    assert exported.get_finished_spans() == ()


# -- workers ---------------------------------------------------------------------------
def container(service: str = "users_v1") -> Mock:
    return Mock(config={}, service_name=service)


def worker_ctx(entrypoint, data: dict) -> WorkerContext:
    return WorkerContext(entrypoint.container, None, entrypoint, data=data)


def test_a_worker_continues_the_callers_span_and_passes_its_own_downstream(exported):
    users = container()
    provider = Tracing().bind(users, "traces")
    ctx = worker_ctx(
        Rpc().bind(users, "update"), {"request_id": "r-1", "traceparent": TRACEPARENT}
    )
    provider.worker_setup(ctx)
    downstream = dict(ctx.context_data)  # what nameko puts in a downstream call's headers
    provider.worker_result(ctx, result=[{}, {}])

    (server,) = exported.get_finished_spans()
    assert (server.name, server.kind.name) == ("users_v1.update", "SERVER")
    assert hex_ids(server)[::2] == (TRACE_ID, CLIENT_SPAN)
    assert parse(downstream["traceparent"]) == hex_ids(server)[:2]
    assert downstream["request_id"] == "r-1"
    assert server.status.status_code.name == "UNSET"


def test_an_expected_error_is_noted_but_an_unexpected_one_fails_the_span(exported):
    users = container()
    provider = Tracing().bind(users, "traces")
    entrypoint = Rpc(expected_exceptions=UserNotFound).bind(users, "get")
    for error in (UserNotFound("u-1"), RuntimeError("bug")):
        ctx = worker_ctx(entrypoint, {"traceparent": TRACEPARENT})
        provider.worker_setup(ctx)
        provider.worker_result(ctx, exc_info=(type(error), error, None))
    expected, unexpected = exported.get_finished_spans()
    assert expected.status.status_code.name == "UNSET"
    assert expected.attributes["error.type"] == "UserNotFound"
    assert unexpected.status.status_code.name == "ERROR"


def test_timers_and_pings_open_no_span(exported):
    users = container()
    provider = Tracing().bind(users, "traces")
    for method in ("ping", "relay_pending_events"):
        entrypoint = (Rpc() if method == "ping" else Mock(method_name=method)).bind(users, method)
        ctx = worker_ctx(entrypoint, {})
        provider.worker_setup(ctx)
        provider.worker_result(ctx)
    assert exported.get_finished_spans() == ()


def test_an_event_handler_is_a_consumer_span_child_of_the_dispatch(exported):
    users, orders = container(), container("orders")
    tracer = Tracing().bind(users, "traces")
    rpc_ctx = worker_ctx(Rpc().bind(users, "update"), {"traceparent": TRACEPARENT})
    tracer.worker_setup(rpc_ctx)

    dispatcher = TracedEventDispatcher().bind(users, "dispatch")
    dispatcher.exchange = Exchange("users_v1.events")
    dispatcher.publisher = Mock()
    dispatcher.get_dependency(rpc_ctx)("user_updated", {"userId": "u-1"})
    tracer.worker_result(rpc_ctx)
    headers = dispatcher.publisher.publish.call_args.kwargs["extra_headers"]

    handler = EventHandler("users_v1", "user_updated").bind(orders, "handle_user_updated_v1")
    data = {k.removeprefix("nameko."): v for k, v in headers.items()}  # as nameko decodes
    event_ctx = worker_ctx(handler, data)
    orders_tracer = Tracing().bind(orders, "traces")
    orders_tracer.worker_setup(event_ctx)
    tracing.tracer().start_span("update orders").end()  # as the mongo listener would
    orders_tracer.worker_result(event_ctx)

    spans = {s.name: s for s in exported.get_finished_spans()}
    dispatch = spans["users_v1.dispatch user_updated"]
    consumer = spans["orders.handle_user_updated_v1"]
    assert dispatch.kind.name == "PRODUCER" and consumer.kind.name == "CONSUMER"
    assert hex_ids(dispatch)[2] == hex_ids(spans["users_v1.update"])[1]
    assert parse(headers["nameko.traceparent"]) == hex_ids(dispatch)[:2]
    assert hex_ids(consumer)[2] == hex_ids(dispatch)[1]
    assert hex_ids(spans["update orders"])[2] == hex_ids(consumer)[1]
    assert {hex_ids(s)[0] for s in spans.values()} == {TRACE_ID}


def test_a_relayed_event_stays_in_the_trace_of_its_update(exported, users_repository):
    user = users_domain.create_user(
        users_repository, {"emails": ["relay@example.com"], "deliveryAddress": address()},
        users_domain.V2,
    )  # fmt: skip

    def broker_down(event_type: str, event: dict) -> None:
        raise ConnectionError("broker gone")

    update_span = tracing.tracer().start_as_current_span("users_v2.update")
    with tracing.resumed(TRACEPARENT), update_span as update:
        users_domain.update_contact(
            users_repository, user["userId"], {"emails": ["new@example.com"]},
            users_domain.V2, broker_down,
        )  # fmt: skip
    stored = users_repository.find(user["userId"])
    assert parse(stored["eventTraceparent"]) == hex_ids(update)[:2]

    seen: list[str | None] = []
    sent = users_domain.relay_pending_events(
        users_repository, lambda *_: seen.append(tracing.current_traceparent()), -1
    )
    assert sent == 1 and parse(seen[0]) == hex_ids(update)[:2]
    assert "eventTraceparent" not in users_repository.find(user["userId"])


def test_an_update_outside_any_trace_leaves_no_stale_trace_on_its_event(users_repository):
    tracing_was = tracing.install(None)
    try:
        user = users_domain.create_user(
            users_repository, {"emails": ["stale@example.com"], "deliveryAddress": address()},
            users_domain.V2,
        )  # fmt: skip
        stored = users_repository.find(user["userId"])
        users_repository.users.update_one(
            {"_id": stored["_id"]}, {"$set": {"eventTraceparent": TRACEPARENT}}
        )
        users_repository.apply_contact_change(
            users_repository.find(user["userId"]), {"emails": ["x@example.com"]},
            users_domain.utcnow(),
        )  # fmt: skip
    finally:
        tracing.install(tracing_was)
    assert "eventTraceparent" not in users_repository.find(user["userId"])


# -- the provider and the exporter ------------------------------------------------------
def test_json_lines_hold_one_span_per_line_with_its_links(tmp_path):
    path = tmp_path / "traces" / "edge-v1.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing.JsonLinesExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        tracer.start_span("child", links=[Link(parent.get_span_context())]).end()
    child, parent_line = [json.loads(line) for line in path.read_text().splitlines()]
    assert (child["name"], parent_line["name"]) == ("child", "parent")
    assert child["parent_span_id"] == parent_line["span_id"]
    assert parent_line["parent_span_id"] is None
    assert child["trace_id"] == parent_line["trace_id"] and len(child["trace_id"]) == 32
    assert child["links"] == [{"trace_id": child["trace_id"], "span_id": parent_line["span_id"]}]
    assert child["kind"] == "INTERNAL" and child["end_ns"] >= child["start_ns"]


def test_the_provider_follows_the_environment(tmp_path):
    assert tracing.build_provider("x", {"OTEL_SDK_DISABLED": "true"}) is None
    provider = tracing.build_provider(
        "edge-v1", {"TRACE_SAMPLE_RATIO": "0", "TRACES_DIR": str(tmp_path)}
    )
    tracer = provider.get_tracer("test")
    assert not tracer.start_span("new root").is_recording()  # sampled out at ratio 0 ...
    parent = tracing.extract({"traceparent": TRACEPARENT})
    assert tracer.start_span("child", context=parent).is_recording()  # ... a client's is kept
    assert provider.resource.attributes["service.name"] == "edge-v1"
    provider.shutdown()
    assert (tmp_path / "edge-v1.jsonl").exists()


class CountingProvider(TracerProvider):
    def __init__(self) -> None:
        super().__init__()
        self.tracers_made = 0

    def get_tracer(self, *args, **kwargs):
        self.tracers_made += 1
        return super().get_tracer(*args, **kwargs)


def test_the_tracer_is_made_once_per_installed_provider():
    # The SDK's get_tracer costs ~10 us a call: once per install, not once per span.
    exporter, provider = InMemorySpanExporter(), CountingProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.install(provider)
    try:
        for name in ("a", "b", "c"):
            tracing.tracer().start_span(name).end()
        tracing.install(None)  # off: a no-op tracer, nothing recorded
        assert not tracing.tracer().start_span("dropped").is_recording()
        tracing.install(provider)
        tracing.tracer().start_span("again").end()  # the reinstalled provider's tracer
    finally:
        tracing.install(previous)
    assert provider.tracers_made == 2
    assert [span.name for span in exporter.get_finished_spans()] == ["a", "b", "c", "again"]
