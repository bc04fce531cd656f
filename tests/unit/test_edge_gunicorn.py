"""gunicorn config: counts from env, and gunicorn's own error pages are problem+json."""

from __future__ import annotations

import importlib
import json
import socket

import pytest


def load_conf(monkeypatch, **env: str):
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS", "RPC_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import http_edge.gunicorn_conf as conf

    return importlib.reload(conf)


def test_defaults_suit_two_cores(monkeypatch) -> None:
    conf = load_conf(monkeypatch)
    assert (conf.worker_class, conf.workers, conf.threads) == ("gthread", 2, 4)
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

    load_conf(monkeypatch)
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
