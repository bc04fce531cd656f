"""An edge reached directly (no gateway in front): stalled and malformed bodies and unsafe
request ids, over raw sockets against a real gunicorn."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.auth import api, raw_auth_header
from tests.support.processes import Edge

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

READ_TIMEOUT = 1.0
THREADS = 2 * 4  # GUNICORN_WORKERS x GUNICORN_THREADS in conftest.Edge
USER = {"emails": ["slow@example.com"], "deliveryAddress": {}}


@pytest.fixture(scope="module")
def edge(amqp_uri: str, tmp_path_factory) -> Iterator[Edge]:
    """No workers: everything here is answered before any RPC."""
    log = tmp_path_factory.mktemp("hardening") / "edge.log"
    edge = Edge("users_v1", amqp_uri, log, extra_env={"EDGE_READ_TIMEOUT": str(READ_TIMEOUT)})
    edge.start()
    yield edge
    edge.stop()


def read_all(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def problem_of(raw: bytes, status: int) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), raw[:300]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["requestId"] == headers["x-request-id"]
    return problem


def stalled_post(port: int, request_id: str) -> bytes:
    """Headers and part of a body, then silence: what the edge answers (or b"")."""
    body = json.dumps(USER).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /users/ HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
            + raw_auth_header()
            + f"X-Request-ID: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        return read_all(sock)


def test_stalled_bodies_get_408_and_do_not_hold_the_edge(edge):
    # One more stalled client than the edge has threads: before the read timeout, these
    # held every thread and /health never answered.
    clients = THREADS + 1
    with ThreadPoolExecutor(clients) as pool:
        stalled = [pool.submit(stalled_post, edge.port, f"stall-{n}") for n in range(clients)]
        time.sleep(0.3)  # let every stalled client take its thread
        began = time.monotonic()
        health = api.get(f"{edge.url}/health", timeout=READ_TIMEOUT * 8)
        waited = time.monotonic() - began
        answers = [future.result(timeout=30) for future in stalled]

    assert health.status_code == 200
    assert waited < READ_TIMEOUT * 4
    for n, raw in enumerate(answers):
        problem = problem_of(raw, 408)
        assert problem["requestId"] == f"stall-{n}"
        assert problem["title"] == "Request Timeout"


def test_a_client_that_stops_inside_its_headers_is_disconnected(edge):
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as sock:
        began = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n")

        assert read_all(sock) == b""  # gunicorn closes; it has no request to answer yet
        assert time.monotonic() - began < READ_TIMEOUT * 4
    time.sleep(0.2)
    lines = [json.loads(line) for line in edge.log_path.read_text().splitlines()]
    stalled = [line for line in lines if line.get("event") == "client_stalled"]
    assert stalled and stalled[-1]["level"] == "INFO" and "exc" not in stalled[-1]
    assert not [line for line in lines if line["level"] == "ERROR"]  # no traceback either


@pytest.mark.parametrize(
    "chunks",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"2;\x00\r\n{}\r\n0\r\n\r\n"],
    ids=["bad size", "missing terminator", "bad extension"],
)
def test_a_malformed_chunked_body_is_a_400_problem(edge, chunks):
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as sock:
        sock.sendall(
            b"POST /users/ HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
            + raw_auth_header()
            + b"X-Request-ID: chunky\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunks
        )
        raw = read_all(sock)  # and the connection closes: where the next request starts is lost

    problem = problem_of(raw, 400)
    assert problem["requestId"] == "chunky"
    assert "chunked" in problem["detail"]


@pytest.mark.parametrize("request_id", ["x" * 7000, "a" * 65, "has space", "-leading"])
def test_an_unsafe_request_id_is_replaced_in_the_header_the_body_and_the_log(edge, request_id):
    response = api.get(f"{edge.url}/nowhere", headers={"X-Request-ID": request_id})

    fresh = response.headers["X-Request-ID"]
    assert response.status_code == 404 and uuid.UUID(fresh).version == 4
    assert response.json()["requestId"] == fresh
    logged = [json.loads(line) for line in edge.log_path.read_text().splitlines() if fresh in line]
    assert [(line["request_id"], line["path"]) for line in logged] == [(fresh, "/nowhere")]
    assert request_id not in edge.log_path.read_text()
