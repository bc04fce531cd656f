"""gunicorn settings from the environment; defaults suit a 2-core machine.

Start: `gunicorn -c http_edge/gunicorn_conf.py http_edge.wsgi:app`
"""

from __future__ import annotations

import os
import tempfile

# prometheus_client picks multiprocess mode when first imported, so the directory is set
# before anything imports it (http_edge.gunicorn_setup imports the app).
metrics_port = os.environ.get("EDGE_METRICS_PORT", "").strip()
OWN_METRICS_PREFIX = "edge-metrics-"
if metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=OWN_METRICS_PREFIX)
# By its name, not "we just made it": a SIGHUP reload (make restart) runs this file again.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
own_metrics_dir = bool(metrics_port) and os.path.dirname(_metrics_dir) == tempfile.gettempdir()
own_metrics_dir = own_metrics_dir and os.path.basename(_metrics_dir).startswith(OWN_METRICS_PREFIX)

import shutil  # noqa: E402

from common import tracing  # noqa: E402
from common.logs import skip_unused_record_fields  # noqa: E402
from http_edge import metrics  # noqa: E402
from http_edge.gunicorn_setup import (  # noqa: E402
    drain_on_term,
    install_problem_error_pages,
    set_read_timeout,
)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


bind = os.environ.get("EDGE_BIND", "127.0.0.1:8101")
# "gthread": gunicorn's, closing its listeners as soon as a stopping worker stops accepting.
_worker = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
worker_class = "http_edge.gunicorn_setup.ThreadWorker" if _worker == "gthread" else _worker
workers = _int("GUNICORN_WORKERS", 2)
# Each thread keeps its own AMQP reply connection (http_edge/rpc.py). 2 x 4 measured
# best on 2 cores: more threads per process only add GIL contention (see docs/api.md).
threads = _int("GUNICORN_THREADS", 4)
# Must outlast the slowest RPC, or gunicorn kills a worker that is merely waiting.
timeout = max(30, int(float(os.environ.get("RPC_TIMEOUT", "10") or 10) * 3))
# After SIGTERM: /ready answers 503 this long while the edge still serves, then gunicorn's
# graceful stop gives in-flight requests graceful_timeout; the edge is gone within the sum.
drain_seconds = _seconds("EDGE_DRAIN_SECONDS", 1.0)
graceful_timeout = 15
# Longest silence while a request (headers or body) is being received: a stalled client
# gets a 408 instead of holding a worker thread (gunicorn has no such timeout itself).
read_timeout = _seconds("EDGE_READ_TIMEOUT", 10.0)
keepalive = 5
# gunicorn's maximum: long percent-encoded ids reach the app (a JSON 404) instead of a 414.
limit_request_line = 8190
accesslog = None  # the app logs each request as JSON, with its request id
logger_class = "http_edge.log.GunicornLogger"  # gunicorn's logger minus its access log
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "common.logs.JsonFormatter", "service": "http_edge"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


def on_starting(server) -> None:  # noqa: ANN001
    install_problem_error_pages()
    drain_on_term(server, drain_seconds)
    directory = metrics.multiprocess_dir()
    if directory is not None:
        metrics.wipe(directory)
    if metrics_port:
        bind_address = os.environ.get("EDGE_METRICS_BIND", "127.0.0.1").strip() or "127.0.0.1"
        httpd = metrics.serve_multiprocess(bind_address, int(metrics_port))
        server.log.info(
            "metrics on http://%s:%d/metrics",
            bind_address,
            httpd.server_port,
            extra={"metrics_bind": bind_address, "metrics_port": httpd.server_port},
        )


def child_exit(server, worker) -> None:  # noqa: ANN001
    if metrics.multiprocess_dir() is not None:
        metrics.worker_exited(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001
    directory = metrics.multiprocess_dir()
    if own_metrics_dir and directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def when_ready(server) -> None:  # noqa: ANN001
    # Linux copies SO_RCVTIMEO into a connection when the handshake completes, not at
    # accept(): set in the master right after listen(), before any worker boots, so a
    # client that connects while workers start is bounded too (it was not: a flaky test).
    set_read_timeout(server.LISTENERS, read_timeout)


def worker_exit(server, worker) -> None:  # noqa: ANN001
    tracing.flush()  # the last batch of spans (up to 5 s of them) would die with the worker


def post_worker_init(worker) -> None:  # noqa: ANN001
    set_read_timeout(worker.sockets, read_timeout)
    skip_unused_record_fields()  # the edge logs only as common.logs' JSON
