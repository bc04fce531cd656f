"""One `PUT /users/{id}` with a client `traceparent`, through the local gateway to real edges
and workers, is ONE trace: edge → users_vX.update → mongo, → dispatch →
orders.handle_user_updated_vX → mongo; its trace id is in the edge's and both workers' logs."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.auth import auth_headers
from tests.support.broker import Vhost
from tests.support.data import address
from tests.support.gateway import running_gateway
from tests.support.processes import Edge, Workers, setup_database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# Spans leave each process in batches; short batches keep the test quick.
TRACE_ENV = {"OTEL_BSP_SCHEDULE_DELAY": "100", "TRACE_SAMPLE_RATIO": "1"}


@dataclass
class TracedStack:
    traces: Path
    workers: Workers
    edges: dict[str, Edge]


@pytest.fixture(scope="module")
def traced_stack(mongo_uri: str, tmp_path_factory) -> Iterator[TracedStack]:
    root = tmp_path_factory.mktemp("traced-stack")
    traces = root / "traces"
    mongo_db = f"trace_{uuid.uuid4().hex[:10]}"
    setup_database(mongo_uri, mongo_db)
    env = {**TRACE_ENV, "TRACES_DIR": str(traces)}
    # A vhost of its own: the session's untraced workers (edge_stack) must not take its calls.
    vhost = Vhost()
    vhost.create()
    workers = Workers(
        vhost.uri, mongo_uri, mongo_db, root / "workers.log",
        extra_env={**env, "OTEL_SERVICE_NAME": "workers"},
    )  # fmt: skip
    edges = {
        version: Edge(
            f"users_{version}",
            vhost.uri,
            root / f"edge-{version}.log",
            extra_env={**env, "OTEL_SERVICE_NAME": f"edge-{version}"},
        )  # fmt: skip
        for version in ("v1", "v2")
    }
    try:
        workers.start()
        for edge in edges.values():
            edge.start()
        for edge in edges.values():
            edge.wait_ready()
        yield TracedStack(traces, workers, edges)
    finally:
        for edge in edges.values():
            edge.stop()
        workers.stop()
        vhost.delete()


def json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def spans_of(stack: TracedStack, trace_id: str) -> list[dict]:
    return [
        span
        for path in sorted(stack.traces.glob("*.jsonl"))
        for span in json_lines(path)
        if span["trace_id"] == trace_id
    ]


def wait_for_trace(stack: TracedStack, trace_id: str, last_span: str) -> list[dict]:
    """Every span of the trace, once `last_span` and the spans opened under it are written."""
    deadline = time.monotonic() + 20
    while True:
        spans = spans_of(stack, trace_id)
        ends = [s for s in spans if s["name"] == last_span]
        if ends and any(s["parent_span_id"] == ends[0]["span_id"] for s in spans):
            time.sleep(0.5)  # one more batch: anything still in flight lands too
            return spans_of(stack, trace_id)
        if time.monotonic() > deadline:
            names = sorted(s["name"] for s in spans)
            raise AssertionError(f"trace {trace_id} never reached {last_span}: {names}")
        time.sleep(0.1)


def one(spans: list[dict], name: str, kind: str) -> dict:
    found = [s for s in spans if s["name"] == name and s["kind"] == kind]
    assert len(found) == 1, (name, kind, [(s["name"], s["kind"]) for s in spans])
    return found[0]


def children(spans: list[dict], parent: dict) -> list[dict]:
    return [s for s in spans if s["parent_span_id"] == parent["span_id"]]


def is_mongo(span: dict) -> bool:
    return span["attributes"].get("db.system.name") == "mongodb" and span["kind"] == "CLIENT"


def create_user(url: str) -> str:
    tag = uuid.uuid4().hex[:12]
    body = {"emails": [f"trace-{tag}@example.com"], "deliveryAddress": address()}
    response = requests.post(f"{url}/users/", json=body, headers=auth_headers(), timeout=15)
    assert response.status_code == 201, response.text
    return response.json()["userId"]


def create_order(url: str, user_id: str) -> None:
    body = {
        "userId": user_id,
        "items": [{"itemId": "sku-1", "quantity": 1, "price": 1.0}],
        "userEmails": ["before@example.com"],
        "deliveryAddress": address(),
        "orderStatus": "under process",
    }
    response = requests.post(f"{url}/orders/", json=body, headers=auth_headers(), timeout=15)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_one_put_is_one_trace_from_the_edge_to_the_orders_handler(traced_stack, tmp_path, version):
    edges = traced_stack.edges
    p_value = "100" if version == "v1" else "0"  # every /users request to this generation
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    with running_gateway(
        tmp_path, p_value=p_value, v1_port=edges["v1"].port, v2_port=edges["v2"].port
    ) as url:
        user_id = create_user(url)
        create_order(url, user_id)
        headers = {**auth_headers(), "traceparent": f"00-{trace_id}-{client_span}-01"}
        changes = {"emails": [f"after-{uuid.uuid4().hex[:8]}@example.com"]}
        response = requests.put(
            f"{url}/users/{user_id}", json=changes, headers=headers, timeout=15
        )
    assert response.status_code == 200, response.text
    assert response.headers["X-Users-Version"] == version
    request_id = response.headers["X-Request-ID"]
    users, handler = f"users_{version}", f"orders.handle_user_updated_{version}"

    spans = wait_for_trace(traced_stack, trace_id, handler)

    # The tree: every span's parent is in this trace, except the root, whose parent is the
    # client's span; and each hop is the child of the one before it.
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids]
    assert [(r["name"], r["parent_span_id"]) for r in roots] == [
        ("PUT /users/<user_id>", client_span)
    ]
    edge = roots[0]
    assert (edge["kind"], edge["service"]) == ("SERVER", f"edge-{version}")
    assert edge["attributes"]["http.response.status_code"] == 200
    rpc_client = one(spans, f"{users}.update", "CLIENT")
    rpc_server = one(spans, f"{users}.update", "SERVER")
    dispatch = one(spans, f"{users}.dispatch user_updated", "PRODUCER")
    consumer = one(spans, handler, "CONSUMER")
    assert rpc_client["parent_span_id"] == edge["span_id"]
    assert rpc_server["parent_span_id"] == rpc_client["span_id"]
    assert rpc_server["service"] == "workers"
    assert dispatch["parent_span_id"] == rpc_server["span_id"]
    assert consumer["parent_span_id"] == dispatch["span_id"]
    users_mongo = [s for s in children(spans, rpc_server) if is_mongo(s)]
    orders_mongo = [s for s in children(spans, consumer) if is_mongo(s)]
    assert {s["attributes"].get("db.collection.name") for s in users_mongo} >= {"users"}
    assert {s["attributes"].get("db.collection.name") for s in orders_mongo} == {"orders"}
    # The users update reads before it writes, and publishes after its write committed.
    first_mongo = min(users_mongo, key=lambda s: s["start_ns"])
    assert first_mongo["name"] == "find users"
    write = one(users_mongo, "findAndModify users", "CLIENT")
    assert dispatch["start_ns"] > write["end_ns"]
    assert all(s["status"] != "ERROR" for s in spans), [s for s in spans if s["status"] == "ERROR"]

    # The same trace id in the edge's, the users worker's and the orders worker's log lines.
    edge_lines = [
        line for line in json_lines(edges[version].log_path) if line.get("trace_id") == trace_id
    ]
    assert [(line["logger"], line["request_id"]) for line in edge_lines] == [
        ("http_edge.access", request_id)
    ]
    worker_lines = json_lines(traced_stack.workers.log_path)
    calls = sorted(
        line["message"]
        for line in worker_lines
        if line.get("trace_id") == trace_id and line["logger"] == "workers.calls"
    )
    assert calls == [f"{handler} ok", f"{users}.update ok"]


def trace_id_of(edge: Edge, request_id: str) -> str:
    """The trace id the edge logged for the request (unsampled traces are logged too)."""
    deadline = time.monotonic() + 10
    while True:
        for line in json_lines(edge.log_path):
            if line.get("logger") == "http_edge.access" and line.get("request_id") == request_id:
                return line["trace_id"]
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for request {request_id}")
        time.sleep(0.1)


@pytest.mark.parametrize("ratio", ["0", "1"])
def test_the_gateways_ratio_decides_for_the_traces_it_starts(traced_stack, tmp_path, ratio):
    # Edges and workers sample everything (TRACE_ENV): only the gateway's flag can say no.
    edges = traced_stack.edges
    body = {"emails": [f"ratio-{uuid.uuid4().hex[:8]}@example.com"], "deliveryAddress": address()}
    with running_gateway(
        tmp_path, p_value="100", v1_port=edges["v1"].port, v2_port=edges["v2"].port,
        extra_env={"TRACE_SAMPLE_RATIO": ratio},
    ) as url:  # fmt: skip
        response = requests.post(f"{url}/users/", json=body, headers=auth_headers(), timeout=15)
    assert response.status_code == 201, response.text
    trace_id = trace_id_of(edges["v1"], response.headers["X-Request-ID"])

    if ratio == "1":
        spans = wait_for_trace(traced_stack, trace_id, "users_v1.create")
        assert {"edge-v1", "workers"} <= {s["service"] for s in spans}
    else:
        time.sleep(2)  # 20 export batches (OTEL_BSP_SCHEDULE_DELAY=100): long enough to land
        assert spans_of(traced_stack, trace_id) == []
