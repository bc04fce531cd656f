"""gunicorn config: counts from env, and gunicorn's own error pages are problem+json."""

from __future__ import annotations

import importlib
import json
import logging
import socket
import struct
import time

import eventlet.patcher
import pytest

# The test session is monkey-patched by eventlet; gunicorn's gthread workers use real sockets.
real_socket = eventlet.patcher.original("socket")


def load_conf(monkeypatch, **env: str):
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS", "RPC_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import http_edge.gunicorn_conf as conf

    return importlib.reload(conf)


def test_defaults_suit_two_cores(monkeypatch) -> None:
    conf = load_conf(monkeypatch)
    assert (conf.workers, conf.threads) == (2, 4)
    assert conf.worker_class == "http_edge.gunicorn_setup.ThreadWorker"  # gthread, draining
    assert conf.timeout > 10  # outlasts the default RPC timeout


def test_counts_come_from_env(monkeypatch) -> None:
    conf = load_conf(
        monkeypatch,
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="6",
        GUNICORN_WORKER_CLASS="sync",
        RPC_TIMEOUT="20",
    )
    assert (conf.worker_class, conf.workers, conf.threads) == ("sync", 3, 6)
    assert conf.timeout >= 60


def test_gunicorn_builds_no_access_record_but_still_logs_its_errors(monkeypatch, capsys):
    # The app logs each request (as JSON, with its id); gunicorn's access log would only
    # cost CPU on every request. Its own errors still reach stderr as JSON.
    from gunicorn.config import Config

    conf = load_conf(monkeypatch)
    cfg = Config()
    for name in ("logger_class", "logconfig_dict", "loglevel", "accesslog"):
        cfg.set(name, getattr(conf, name))
    logger = cfg.logger_class(cfg)
    atoms_built = []
    monkeypatch.setattr(logger, "atoms", lambda *args: atoms_built.append(args) or {})
    logger.access(object(), object(), {}, 0.001)
    assert atoms_built == []
    logger.error("worker %s failed", 7)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["level"], line["message"]) == ("ERROR", "worker 7 failed")


def test_gunicorn_parse_errors_are_problem_json(monkeypatch) -> None:
    import gunicorn.util

    original = gunicorn.util.write_error
    conf = load_conf(monkeypatch)
    assert gunicorn.util.write_error is original  # loading the config patches nothing
    conf.on_starting(None)  # the start-up hook does
    left, right = socket.socketpair()
    with left, right:
        gunicorn.util.write_error(left, 400, "Bad Request", "Invalid request line <script>")
        raw = right.recv(4096).decode()
    head, _, body = raw.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400 Bad Request")
    assert "Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 400
    assert "<html" not in raw


@pytest.fixture(autouse=True)
def restore_write_error():
    import gunicorn.util

    original = gunicorn.util.write_error
    yield
    gunicorn.util.write_error = original


def test_post_worker_init_bounds_every_read_of_an_accepted_socket(monkeypatch) -> None:
    # A client that stops mid-request must not hold a worker thread: the listener's read
    # timeout is inherited by each accepted socket and survives setblocking(True).
    conf = load_conf(monkeypatch, EDGE_READ_TIMEOUT="0.3")
    monkeypatch.setattr(logging, "_srcfile", logging._srcfile)
    monkeypatch.setattr(logging, "logThreads", logging.logThreads)
    monkeypatch.setattr(logging, "logProcesses", logging.logProcesses)
    monkeypatch.setattr(logging, "logMultiprocessing", logging.logMultiprocessing)
    with real_socket.create_server(("127.0.0.1", 0)) as listener:
        conf.post_worker_init(type("Worker", (), {"sockets": [listener]})())
        with real_socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                accepted.setblocking(True)  # what gunicorn's gthread worker does
                client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345")
                accepted.recv(4096)
                began = time.monotonic()
                with pytest.raises(BlockingIOError):
                    accepted.recv(4096)
                waited = time.monotonic() - began
    assert 0.25 <= waited < 2.0
    assert struct.unpack("ll", accepted_timeout(conf)) == (0, 300000)
    assert logging._srcfile is None  # and the lean LogRecords are a named start-up call


def accepted_timeout(conf) -> bytes:
    with real_socket.create_server(("127.0.0.1", 0)) as listener:
        conf.post_worker_init(type("Worker", (), {"sockets": [listener]})())
        return listener.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
