"""common.logs: one line format for edges and workers, and no import-time side effects."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest

from common.logs import JsonFormatter, bind, unbind

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ALWAYS = {"time", "level", "service", "logger", "message", "request_id", "pid"}


def line(formatter: JsonFormatter, msg: str = "hello", exc: bool = False, **extra) -> dict:
    exc_info = None
    if exc:
        try:
            raise KeyError("k")
        except KeyError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("some.logger", logging.INFO, __file__, 1, msg, (), exc_info)
    record.__dict__.update(extra)
    return json.loads(formatter.format(record))


@pytest.fixture(autouse=True)
def clean_context():
    unbind()
    yield
    unbind()


def test_a_line_outside_any_request_has_the_common_keys_and_a_z_time() -> None:
    entry = line(JsonFormatter("http_edge"))

    assert set(entry) == ALWAYS
    assert TIME.match(entry["time"])
    assert (entry["service"], entry["request_id"], entry["level"]) == ("http_edge", None, "INFO")


def test_bound_context_fills_request_id_caller_trace_id_and_service() -> None:
    bind(request_id="r-1", caller="app:shop", trace_id="t" * 32, service="orders")

    entry = line(JsonFormatter("workers"), event="call", outcome="ok")

    assert entry["request_id"] == "r-1" and entry["caller"] == "app:shop"
    assert entry["trace_id"] == "t" * 32 and entry["service"] == "orders"
    assert (entry["event"], entry["outcome"]) == ("call", "ok")


def test_edge_and_worker_lines_have_the_same_keys() -> None:
    bind(request_id="r-2")
    edge = line(JsonFormatter("http_edge"))
    worker = line(JsonFormatter("workers"))

    assert set(edge) == set(worker) == ALWAYS
    assert edge["request_id"] == worker["request_id"] == "r-2"


def test_expected_errors_keep_the_line_but_not_the_traceback() -> None:
    formatter = JsonFormatter("workers")

    assert "exc" not in line(formatter, "(expected) error handling worker", exc=True)
    assert "KeyError: 'k'" in line(formatter, "boom", exc=True)["exc"]


def test_importing_the_logging_modules_changes_nothing_process_wide() -> None:
    code = (
        "import logging, gunicorn.util as u; before = (logging._srcfile, u.write_error); "
        "import common.logs, workers.runtime.logs, http_edge.log, http_edge.gunicorn_conf; "
        "assert (logging._srcfile, u.write_error) == before, 'import side effect'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr[-2000:]
