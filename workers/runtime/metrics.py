"""Prometheus metrics of the workers: one registry and one `/metrics` server per process, which
every service opts into with one line (`metrics = WorkerMetrics()`); docs/observability.md."""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

DEFAULT_BIND = "127.0.0.1"
# A trivial call takes ~1 ms here; RPC callers give up after 30 s.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Direct delivery is milliseconds; a relayed event waits the grace (2 s) plus up to a timer tick.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)

OK, UNEXPECTED = "ok", "unexpected"
APPLIED, RETRIED, DEAD_LETTERED = "applied", "retried", "dead_lettered"


class MetricSet:
    """Every worker metric family, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.rpc = RpcCalls()
        registry.register(self.rpc)
        self.events = Counter(
            "worker_events",
            "Events a handler settled: applied (acked), retried (requeued), dead_lettered.",
            ["service", "source_service", "event_type", "outcome"],
            registry=registry,
        )
        self.event_lag = Histogram(
            "worker_event_lag_seconds",
            "Time from the change an event reports (its updatedAt) to the handler's result.",
            ["service", "source_service", "event_type"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "users_outbox_backlog",
            "Users whose user_updated stayed unpublished past the relay's grace, as the last "
            "relay run left them (at most one relay batch).",
            ["service", "generation"],
            registry=registry,
        )
        self.email_claim_conflicts = Counter(
            "users_email_claim_conflicts",
            "Creates and updates refused because an email belongs to another user.",
            ["service", "generation"],
            registry=registry,
        )


class RpcCalls(Collector):
    """`worker_rpc_calls_total` and `worker_rpc_duration_seconds`, kept in plain dicts: they
    move on every call, and prometheus_client's metrics take a lock per increment (three per
    call, green locks under eventlet: 10 → 1.1 µs per call, docs/performance.md). A worker
    process runs its greenthreads on one OS thread and nothing here yields, so no update
    interleaves with another or with a scrape."""

    LABELS = ("service", "generation", "method")

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str, str], int] = {}
        # Per label set: the count in each bucket (not cumulative; the last is +Inf), then
        # the sum of the durations.
        self.durations: dict[tuple[str, str, str], list[float]] = {}

    def record(
        self, service: str, generation: str, method: str, outcome: str, seconds: float
    ) -> None:
        key = (service, generation, method, outcome)
        self.calls[key] = self.calls.get(key, 0) + 1
        series = self.durations.get(key[:3])
        if series is None:
            series = self.durations[key[:3]] = [0.0] * (len(RPC_BUCKETS) + 2)
        series[bisect_left(RPC_BUCKETS, seconds)] += 1  # buckets hold values <= their bound
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "worker_rpc_calls",
            "RPC calls a worker served, by outcome: ok, the expected error's type, unexpected.",
            labels=[*self.LABELS, "outcome"],
        )
        for key, count in list(self.calls.items()):
            calls.add_metric(key, count)
        durations = HistogramMetricFamily(
            "worker_rpc_duration_seconds",
            "Time a worker spent serving one RPC call, reply excluded.",
            labels=self.LABELS,
        )
        bounds = [floatToGoString(bound) for bound in (*RPC_BUCKETS, math.inf)]
        for key, series in list(self.durations.items()):
            cumulative = list(itertools.accumulate(series[:-1]))
            durations.add_metric(
                key, list(zip(bounds, cumulative, strict=True)), sum_value=series[-1]
            )
        yield calls
        yield durations


_active = MetricSet(REGISTRY)  # the default registry also carries process_* and python_*
# The (service, generation) labels of the worker this greenthread runs, for the domain hooks.
_labels: ContextVar[tuple[str, str] | None] = ContextVar("metric_labels", default=None)
_started: ContextVar[float] = ContextVar("metric_started", default=0.0)


@contextmanager
def recording_to(metric_set: MetricSet) -> Iterator[MetricSet]:
    """Record into `metric_set` instead of the process registry (tests use fresh registries)."""
    global _active
    previous, _active = _active, metric_set
    try:
        yield metric_set
    finally:
        _active = previous


def generation_of(service_cls: type) -> str:
    """ "v1"/"v2" for the users services, "" (no label in Prometheus) for the others."""
    generation = getattr(service_cls, "generation", None)
    return getattr(generation, "name", "")


def email_claim_conflict() -> None:
    labels = _labels.get()
    if labels is not None:
        _active.email_claim_conflicts.labels(*labels).inc()


def outbox_backlog(count: int) -> None:
    labels = _labels.get()
    if labels is not None:
        _active.outbox_backlog.labels(*labels).set(count)


def event_settled(
    service: str, source_service: str, event_type: str, outcome: str, event: Any = None
) -> None:
    _active.events.labels(service, source_service, event_type, outcome).inc()
    lag = event_lag_seconds(event)
    if lag is not None:
        _active.event_lag.labels(service, source_service, event_type).observe(lag)


def event_lag_seconds(event: Any) -> float | None:
    """now − the event's `updatedAt` (never negative: clocks of two hosts may disagree)."""
    if not isinstance(event, dict) or not isinstance(event.get("updatedAt"), str):
        return None
    try:
        updated = datetime.fromisoformat(event["updatedAt"])
    except ValueError:
        return None
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return max((datetime.now(UTC) - updated).total_seconds(), 0.0)


class _Server:
    """The process's one `/metrics` server, shared by its containers, closed with the last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.httpd: Any = None

    def acquire(self, bind: str, port: int) -> None:
        with self.lock:
            if self.httpd is None:
                self.httpd, _ = start_http_server(port, addr=bind, registry=_active.registry)
                log.info(
                    "metrics on http://%s:%d/metrics",
                    bind,
                    self.port,
                    extra={"metrics_bind": bind, "metrics_port": self.port},
                )
            elif port not in (0, self.port):
                log.warning("METRICS_PORT %d ignored: this process serves :%d", port, self.port)
            self.users += 1

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0 and self.httpd is not None:
                self.httpd.shutdown()
                self.httpd.server_close()
                self.httpd = None

    @property
    def port(self) -> int | None:
        return self.httpd.server_port if self.httpd is not None else None


server = _Server()


def serving_port() -> int | None:
    """The port this process's `/metrics` listens on (None: METRICS_PORT unset)."""
    return server.port


class WorkerMetrics(DependencyProvider):
    """Counts and times every RPC call of its service and labels the worker for the domain
    hooks; serves `/metrics` on METRICS_PORT (unset: not served, 0: a free port)."""

    serving = False

    def setup(self) -> None:
        self.service = self.container.service_name
        self.generation = generation_of(self.container.service_cls)
        self.labels = (self.service, self.generation)
        port = self.container.config.get("METRICS_PORT")
        if port not in (None, ""):
            bind = self.container.config.get("METRICS_BIND") or DEFAULT_BIND
            server.acquire(bind, int(port))
            self.serving = True

    def stop(self) -> None:
        self._release()

    def kill(self) -> None:
        self._release()

    def _release(self) -> None:
        if self.serving:
            self.serving = False
            server.release()

    def worker_setup(self, worker_ctx: Any) -> None:
        _labels.set(self.labels)
        _started.set(time.perf_counter())

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        entrypoint = worker_ctx.entrypoint
        if not isinstance(entrypoint, Rpc):
            return  # events are counted where they are settled (workers.runtime.reliable_events)
        elapsed = time.perf_counter() - _started.get()
        if exc_info is None:
            outcome = OK
        elif isinstance(exc_info[1], entrypoint.expected_exceptions):
            outcome = type(exc_info[1]).__name__
        else:
            outcome = UNEXPECTED
        _active.rpc.record(self.service, self.generation, entrypoint.method_name, outcome, elapsed)

    def worker_teardown(self, worker_ctx: Any) -> None:
        _labels.set(None)
