"""Prometheus RED metrics of the edge, per users generation and Flask route; served, under
gunicorn, by the master on EDGE_METRICS_PORT from every worker's files (docs/observability.md)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.auth.store import END_USERS

UNMATCHED = "unmatched"  # requests no route matched (404/405): one series, not one per path
# An edge request is one RPC (~2-5 ms here); RPC callers give up after RPC_TIMEOUT (10 s).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LABELS = ("generation", "route", "method")


class EdgeMetrics:
    """The edge's metric families on one registry (tests give each app a fresh one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "edge_requests",
            "HTTP requests the edge answered, by users generation, Flask route, method, status.",
            [*LABELS, "status", "consumer"],
            registry=registry,
        )
        self.errors = Counter(
            "edge_errors",
            "HTTP requests the edge answered with a 5xx.",
            [*LABELS, "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "edge_request_duration_seconds",
            "Time from the request reaching Flask to its response being built.",
            LABELS,
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "edge_requests_in_flight",
            "Requests the edge is serving now.",
            ["generation"],
            registry=registry,
            multiprocess_mode="livesum",  # a dead worker's requests are no longer in flight
        )


def route_of() -> str:
    """The matched Flask rule ("/users/<user_id>"), one form for both trailing-slash rules."""
    rule = request.url_rule
    if rule is None:
        return UNMATCHED
    return rule.rule.rstrip("/") or "/"


def consumer_of() -> str:
    """The consumer this edge authenticated (http_edge.auth), "" when none (no label).

    Never a client's X-Consumer-Username: anyone reaching the edge port could forge it and
    mint series without bound. End users count as their issuer's consumer, as in Kong.
    """
    if g.get("end_user"):
        return END_USERS
    return g.get("caller") or ""


def register_metrics(app: Flask, metrics: EdgeMetrics, generation: str) -> None:
    """Count, time and track in flight every request that reaches Flask."""
    in_flight = metrics.in_flight.labels(generation)

    def before() -> None:
        g.metrics_started = time.perf_counter()
        in_flight.inc()

    def after(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is None:
            return response
        labels = (generation, route_of(), request.method)
        status = str(response.status_code)
        metrics.requests.labels(*labels, status, consumer_of()).inc()
        if response.status_code >= 500:
            metrics.errors.labels(*labels, status).inc()
        metrics.duration.labels(*labels).observe(time.perf_counter() - started)
        return response

    def teardown(_: BaseException | None) -> None:
        if g.pop("metrics_started", None) is not None:
            in_flight.dec()

    # First, so the time covers the other hooks (request id, access log) too.
    app.before_request_funcs.setdefault(None, []).insert(0, before)
    app.after_request(after)  # after_request runs in reverse: this one runs last
    app.teardown_request(teardown)


# gunicorn's side: the multiprocess directory and the master's /metrics server.


def multiprocess_dir() -> Path | None:
    raw = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    return Path(raw) if raw else None


def wipe(directory: Path) -> None:
    """Empty `directory` (a previous run's files would add its counts to this one's)."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def serve_multiprocess(bind: str, port: int) -> Any:
    """Start `/metrics` in this (master) process, aggregating every worker's files."""
    from prometheus_client import multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    server, _ = start_http_server(port, addr=bind, registry=registry)
    return server


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay: they were counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
