"""Test helpers for the local gateway: stub HTTP edges and a real nginx started per test."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kong.local_gateway import prepare_gateway
from tests.support.net import free_port, wait_for_port


@dataclass
class StubEdge:
    """Answers like an HTTP edge of one users generation; records what reached it."""

    version: str
    server: ThreadingHTTPServer
    request_ids: list[str | None] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # of each request, in order

    @property
    def port(self) -> int:
        return self.server.server_address[1]


def _handler(edge: StubEdge) -> type[BaseHTTPRequestHandler]:
    class EdgeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like gunicorn's threaded workers
        disable_nagle_algorithm = True  # else every response waits ~40 ms for delayed ACK

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            request_id = self.headers.get("X-Request-ID")
            edge.request_ids.append(request_id)
            edge.headers.append({k.lower(): v for k, v in self.headers.items()})
            body = json.dumps(
                {"edge": edge.version, "method": self.command, "path": self.path}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if self.path.startswith("/users"):
                self.send_header("X-Users-Version", edge.version)
            if request_id:
                self.send_header("X-Request-ID", request_id)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return EdgeHandler


@contextlib.contextmanager
def stub_edge(version: str) -> Iterator[StubEdge]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    edge = StubEdge(version, server)
    server.RequestHandlerClass = _handler(edge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield edge
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_gateway(
    run_dir: Path,
    *,
    p_value: str,
    v1_port: int,
    v2_port: int,
    rate_limit_per_second: int = 100_000,
    client_timeout: float = 60.0,
    status_port: int | None = None,
    credentials: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Start the real nginx from prepare_gateway(); yield its base URL; stop it.

    Consumers come from `credentials`, else the session's store ($AUTH_CREDENTIALS_FILE);
    `status_port` serves the kong_* metrics on 127.0.0.1; `extra_env` adds settings
    (TRACE_SAMPLE_RATIO, ...).
    """
    port = free_port()
    store = credentials or os.environ.get("AUTH_CREDENTIALS_FILE")
    env = {
        **({"AUTH_CREDENTIALS_FILE": str(store)} if store else {}),
        **({"GATEWAY_STATUS_PORT": str(status_port)} if status_port else {}),
        "P_VALUE": p_value,
        "GATEWAY_PORT": str(port),
        "EDGE_V1_PORT": str(v1_port),
        "EDGE_V2_PORT": str(v2_port),
        "GATEWAY_RATE_LIMIT_PER_SECOND": str(rate_limit_per_second),
        "GATEWAY_CLIENT_TIMEOUT": str(client_timeout),
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        prepare_gateway(run_dir, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port, timeout=5.0, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
