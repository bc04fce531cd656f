"""workers/runtime/logs.py: one JSON line per call, each carrying its own caller's request id."""

from __future__ import annotations

import io
import json
import logging
from types import SimpleNamespace
from typing import Any

import eventlet
import pytest

from common.logs import JsonFormatter
from workers.runtime.logs import RequestLogging, current_request_id

domain_log = logging.getLogger("workers.test_domain")


@pytest.fixture
def lines():
    """Every line the workers' loggers write, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("workers"))
    loggers = [RequestLogging.log, domain_log]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def worker_ctx(request_id: str | None, method: str = "create") -> Any:
    return SimpleNamespace(
        service_name="users_v1",
        entrypoint=SimpleNamespace(method_name=method),
        data={"request_id": request_id} if request_id else {},
    )


def serve(logging_dependency: RequestLogging, ctx: Any, error: Exception | None = None) -> None:
    """What nameko does around one call: setup, the method (which logs), result, teardown."""
    logging_dependency.worker_setup(ctx)
    eventlet.sleep(0.01)  # let the other calls run in between
    domain_log.info("working on %s", ctx.entrypoint.method_name, extra={"step": 1})
    exc_info = (type(error), error, None) if error else None
    logging_dependency.worker_result(ctx, None, exc_info)
    logging_dependency.worker_teardown(ctx)


def test_each_concurrent_call_logs_its_own_request_id(lines) -> None:
    dependency = RequestLogging()
    pool = eventlet.GreenPool()
    for n in range(5):
        pool.spawn(serve, dependency, worker_ctx(f"req-{n}"))
    pool.waitall()

    logged = lines()
    calls = [line for line in logged if line["logger"] == "workers.calls"]
    domain = [line for line in logged if line["logger"] == "workers.test_domain"]
    assert sorted(line["request_id"] for line in calls) == [f"req-{n}" for n in range(5)]
    assert sorted(line["request_id"] for line in domain) == [f"req-{n}" for n in range(5)]
    first = calls[0]
    assert first["message"] == "users_v1.create ok"
    assert [first[key] for key in ("service", "entrypoint", "outcome")] == [
        "users_v1",
        "create",
        "ok",
    ]
    assert first["duration_ms"] >= 10  # measured from worker_setup
    assert first["level"] == "INFO" and first["time"].endswith("Z")
    assert domain[0]["step"] == 1 and domain[0]["message"] == "working on create"
    assert current_request_id() is None


def test_a_failed_call_logs_the_exception_type_and_no_request_id_leaks(lines) -> None:
    dependency = RequestLogging()
    serve(dependency, worker_ctx("req-a", "get"), KeyError("u-1"))
    serve(dependency, worker_ctx(None, "get"))

    failed, anonymous = [line for line in lines() if line["logger"] == "workers.calls"]
    assert failed["message"] == "users_v1.get KeyError" and failed["outcome"] == "KeyError"
    assert failed["request_id"] == "req-a"
    assert anonymous["request_id"] is None  # the previous call's id is gone


def test_expected_errors_keep_the_line_but_not_the_traceback(lines) -> None:
    try:
        raise LookupError("user u-1 not found")
    except LookupError:
        domain_log.exception("(expected) user not found")
        domain_log.exception("unexpected")
    expected, unexpected = lines()
    assert "exc" not in expected
    assert "LookupError: user u-1 not found" in unexpected["exc"]
