"""Per-generation requests, 5xx errors and p99 of /users over a window: from Prometheus
(PromQL) or by diffing two scrapes of the edges' /metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from prometheus_client.parser import text_string_to_metric_families

GENERATIONS = ("v1", "v2")
QUANTILE = 0.99
USERS_ROUTES = "/users"  # the edges' Flask rules: /users, /users/<user_id>, ...
_TIMEOUT = 5.0


@dataclass(frozen=True)
class GenerationStats:
    requests: float = 0.0
    errors: float = 0.0  # 5xx only: a 4xx is the client's mistake, not the generation's
    p99: float | None = None  # seconds; None without requests

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def as_record(self) -> dict[str, Any]:
        return {
            "requests": round(self.requests),
            "errors": round(self.errors),
            "error_ratio": round(self.error_ratio, 5),
            "p99_ms": None if self.p99 is None else round(self.p99 * 1000, 2),
        }


class Source(Protocol):
    def snapshot(self) -> Any: ...

    def window(self, before: Any, after: Any) -> dict[str, GenerationStats]: ...


@dataclass
class Counts:
    """Cumulative counters of one scrape, per generation."""

    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)


def parse_edge_metrics(text: str) -> Counts:
    counts = Counts()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            generation = labels.get("generation")
            if generation not in GENERATIONS or not labels.get("route", "").startswith(
                USERS_ROUTES
            ):
                continue
            if sample.name == "edge_requests_total":
                counts.requests[generation] = counts.requests.get(generation, 0) + sample.value
            elif sample.name == "edge_errors_total":
                counts.errors[generation] = counts.errors.get(generation, 0) + sample.value
            elif sample.name == "edge_request_duration_seconds_bucket":
                per_le = counts.buckets.setdefault(generation, {})
                le = float(labels["le"])
                per_le[le] = per_le.get(le, 0) + sample.value
    return counts


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """histogram_quantile() of cumulative buckets {upper bound: count} (Prometheus' rule:
    linear inside the bucket; the +Inf bucket answers its lower bound)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


@dataclass
class EdgeScrapes:
    """Reads the edges' own /metrics (no Prometheus): each window diffs two scrapes."""

    urls: Sequence[str]

    def snapshot(self) -> Counts:
        total = Counts()
        for url in self.urls:
            response = requests.get(url, timeout=_TIMEOUT)
            response.raise_for_status()
            counts = parse_edge_metrics(response.text)
            for mine, theirs in ((total.requests, counts.requests), (total.errors, counts.errors)):
                for generation, value in theirs.items():
                    mine[generation] = mine.get(generation, 0) + value
            for generation, per_le in counts.buckets.items():
                into = total.buckets.setdefault(generation, {})
                for le, value in per_le.items():
                    into[le] = into.get(le, 0) + value
        return total

    def window(self, before: Counts, after: Counts) -> dict[str, GenerationStats]:
        stats = {}
        for generation in GENERATIONS:
            old = before.buckets.get(generation, {})
            buckets = {
                le: max(0.0, value - old.get(le, 0))
                for le, value in after.buckets.get(generation, {}).items()
            }
            stats[generation] = GenerationStats(
                _delta(after.requests, before.requests, generation),
                _delta(after.errors, before.errors, generation),
                quantile(QUANTILE, buckets),
            )
        return stats


def _delta(now: Mapping[str, float], then: Mapping[str, float], generation: str) -> float:
    # A restarted edge resets its counters: never report a negative window.
    return max(0.0, now.get(generation, 0) - then.get(generation, 0))


@dataclass
class PrometheusQueries:
    """PromQL over the window [before, after] (times) against a Prometheus HTTP API."""

    url: str
    scrape_interval: float = 5.0  # launch/prometheus.py's; the window waits for one more scrape

    def snapshot(self) -> float:
        return time.time()

    def window(self, before: float, after: float) -> dict[str, GenerationStats]:
        time.sleep(max(0.0, self.scrape_interval - (time.time() - after)))
        seconds = max(1, round(after - before))
        users = f'route=~"{USERS_ROUTES}.*"'
        requests_ = self._by_generation(
            f"sum by (generation) (increase(edge_requests_total{{{users}}}[{seconds}s]))", after
        )
        errors = self._by_generation(
            f"sum by (generation) (increase(edge_errors_total{{{users}}}[{seconds}s]))", after
        )
        p99 = self._by_generation(
            f"histogram_quantile({QUANTILE}, sum by (generation, le) "
            f"(increase(edge_request_duration_seconds_bucket{{{users}}}[{seconds}s])))",
            after,
        )
        return {
            g: GenerationStats(requests_.get(g, 0.0), errors.get(g, 0.0), p99.get(g))
            for g in GENERATIONS
        }

    def _by_generation(self, query: str, at: float) -> dict[str, float]:
        response = requests.get(
            f"{self.url.rstrip('/')}/api/v1/query",
            params={"query": query, "time": f"{at:.3f}"},
            timeout=_TIMEOUT,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus refused {query!r}: {body.get('error')}")
        found = {}
        for item in body["data"]["result"]:
            value = float(item["value"][1])
            if not math.isnan(value):
                found[item["metric"].get("generation", "")] = value
        return found
