"""Errors nginx produces itself, before or instead of routing, sent as raw bytes: each is
problem+json with the same request id in the header and the body, never an HTML page."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kong.local_gateway import nginx_binary, write_nginx_files
from kong.render import credentials_path, read_store, render
from tests.support.auth import raw_auth_header
from tests.support.gateway import StubEdge, running_gateway, stub_edge
from tests.support.net import free_port, wait_for_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

CLIENT_TIMEOUT = 1.0
HOST = b"Host: gw\r\n" + raw_auth_header()  # every request carries the credential
# name -> (raw request, status the client gets)
RAW_CASES = {
    "garbage request line": (b"GARBAGE\r\n\r\n", 400),
    "bad method token": (b"G@T /users/u1 HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "HTTP/1.1 without Host": (b"GET /users/u1 HTTP/1.1\r\n\r\n", 400),
    "two Content-Lengths": (
        b"POST /users/ HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
        400,
    ),
    "Content-Length and chunked": (
        b"POST /users/ HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "malformed chunk size": (
        b"POST /users/ HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    ),
    "oversized header": (
        b"GET /users/u1 HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n",
        431,
    ),
    "oversized cookie": (
        b"GET /users/u1 HTTP/1.1\r\n" + HOST + b"Cookie: c=" + b"a" * 40000 + b"\r\n\r\n",
        431,
    ),
    "TRACE on /health": (b"TRACE /health HTTP/1.1\r\n" + HOST + b"\r\n", 405),
    "gzip, chunked": (
        b"POST /users/ HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    "HTTP/2.0 request line": (b"GET /users/u1 HTTP/2.0\r\n" + HOST + b"\r\n", 505),
    "URI over 8 KiB": (b"GET /users/" + b"x" * 10000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "body over 64 KiB": (
        b"POST /users/ HTTP/1.1\r\n" + HOST + b"Content-Length: 70000\r\n\r\n",
        413,
    ),
    "no route": (b"GET /nope HTTP/1.1\r\n" + HOST + b"\r\n", 404),
}


@pytest.fixture(scope="module")
def edges() -> Iterator[tuple[StubEdge, StubEdge]]:
    with stub_edge("v1") as v1, stub_edge("v2") as v2:
        yield v1, v2


@pytest.fixture(scope="module")
def gateway_port(tmp_path_factory, edges) -> Iterator[int]:
    v1, v2 = edges
    run_dir = tmp_path_factory.mktemp("gateway")
    with running_gateway(
        run_dir, p_value="50", v1_port=v1.port, v2_port=v2.port, client_timeout=CLIENT_TIMEOUT
    ) as url:
        yield int(url.rsplit(":", 1)[1])


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, half-close nothing, read until the gateway closes or answers in full."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            head, sep, body = received.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if sep and length and len(body) >= length[0]:
                break
        return received


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_gateway_problem(raw: bytes, status: int) -> dict:
    answered, headers, body = parse(raw)
    assert answered == status, raw[:300]
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert set(problem) == {"type", "title", "status", "detail", "requestId"}
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert problem["requestId"] == headers["x-request-id"]
    assert b"<html" not in raw.lower()
    return problem


@pytest.mark.parametrize("case", RAW_CASES)
def test_every_error_nginx_makes_is_problem_json_with_the_request_id(gateway_port, case):
    data, status = RAW_CASES[case]

    assert_gateway_problem(exchange(gateway_port, data), status)


def test_a_safe_client_request_id_is_kept_in_an_nginx_problem(gateway_port):
    data = b"TRACE /health HTTP/1.1\r\n" + HOST + b"X-Request-ID: trace.me:1\r\n\r\n"

    assert assert_gateway_problem(exchange(gateway_port, data), 405)["requestId"] == "trace.me:1"


@pytest.mark.parametrize(
    "request_id",
    [b"x" * 7000, b"a" * 65, b"has space", b"semi;colon", b"-leading", b"\xc3\xa9t\xc3\xa9"],
)
def test_an_unsafe_client_request_id_is_replaced_everywhere(gateway_port, edges, request_id):
    data = b"GET /users/u1 HTTP/1.1\r\n" + HOST + b"X-Request-ID: " + request_id + b"\r\n"
    before = [len(edge.request_ids) for edge in edges]

    answered, headers, _ = parse(exchange(gateway_port, data + b"Connection: close\r\n\r\n"))

    assert answered == 200
    fresh = headers["x-request-id"]
    assert uuid.UUID(fresh) and fresh.encode() != request_id
    reached = [
        rid for edge, seen in zip(edges, before, strict=True) for rid in edge.request_ids[seen:]
    ]
    assert reached == [fresh]  # the edge gets the same replacement, not the client's bytes


def test_a_64_character_request_id_is_kept_end_to_end(gateway_port, edges):
    request_id = "r" * 64
    data = b"GET /orders/o1 HTTP/1.1\r\n" + HOST + f"X-Request-ID: {request_id}\r\n".encode()

    _, headers, _ = parse(exchange(gateway_port, data + b"Connection: close\r\n\r\n"))

    assert headers["x-request-id"] == request_id
    assert request_id in edges[0].request_ids + edges[1].request_ids


@pytest.mark.parametrize(
    "data",
    [
        b"POST /users/ HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\n{",
        b"GET /users/u1 HTTP/1.1\r\n" + HOST,
    ],
    ids=["partial body", "partial headers"],
)
def test_a_stalled_client_is_cut_off_after_the_client_timeout(gateway_port, data):
    # nginx answers a client timeout (408) by closing the connection without a response:
    # there is nothing to send as problem+json, and no HTML is sent either.
    began = time.monotonic()

    received = exchange(gateway_port, data, timeout=CLIENT_TIMEOUT + 5)

    assert received == b""
    assert CLIENT_TIMEOUT * 0.8 <= time.monotonic() - began < CLIENT_TIMEOUT + 3


@contextlib.contextmanager
def silent_edge() -> Iterator[int]:
    """Accepts connections and reads requests but never answers them."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server.getsockname()[1]
    finally:
        # Joined before closing: a (green) thread still waiting on a closed socket's fd
        # would clash with whatever reuses that fd next in this test session.
        stop.set()
        acceptor.join(timeout=5)
        server.close()
        for sock in held:
            sock.close()


def test_an_edge_that_never_answers_is_a_problem_504(tmp_path: Path):
    with silent_edge() as port:
        target = f"127.0.0.1:{port}"
        credentials = read_store(credentials_path(os.environ))  # the session's store
        config = yaml.safe_load(render(50, target, target, 1000, store=credentials))
        for service in config["services"]:
            service["read_timeout"] = 500  # ms, instead of a minute
        listen = free_port()
        for sub in ("logs", "temp"):
            (tmp_path / sub).mkdir()
        conf = write_nginx_files(config, tmp_path, listen=f"127.0.0.1:{listen}")
        argv = [nginx_binary(), "-p", f"{tmp_path}/", "-c", str(conf), "-e", "/dev/null"]
        nginx = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(listen, timeout=5.0, process=nginx)
            data = b"GET /orders/o1 HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
            problem = assert_gateway_problem(exchange(listen, data), 504)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
            nginx.stderr.close()
    assert "did not answer" in problem["detail"]
