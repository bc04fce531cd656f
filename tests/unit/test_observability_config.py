"""The Grafana dashboard and the compose Prometheus: every panel's PromQL names only metrics
some component exports, and Prometheus scrapes every component by its compose name."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry

from http_edge.metrics import EdgeMetrics
from tests.support import ROOT
from workers.runtime.metrics import MetricSet

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "micro.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
COMPOSE = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())

# rabbitmq_prometheus (deps/rabbitmq_prometheus/metrics.md, per-object endpoint) and Kong 3's
# prometheus plugin: the series the dashboard reads from components that are not ours.
RABBITMQ = {"rabbitmq_queue_messages", "rabbitmq_queue_messages_ready", "rabbitmq_queue_consumers"}
KONG = {
    "kong_http_requests_total",
    "kong_request_latency_ms_bucket",
    "kong_upstream_latency_ms_bucket",
    "kong_kong_latency_ms_bucket",
}
PROMETHEUS = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "le", "inf", "nan"}  # fmt: skip


def exported(registry_owner: type, *args: object) -> set[str]:
    """Every sample name a family of ours can produce (counter _total, histogram _bucket…)."""
    registry = CollectorRegistry()
    registry_owner(registry, *args)
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


KNOWN = exported(MetricSet) | exported(EdgeMetrics) | RABBITMQ | KONG | PROMETHEUS


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, labels, keywords dropped)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)  # label matchers
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)  # ranges, $__rate_interval
    stripped = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped
    )
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped):
        following = stripped[match.end() :].lstrip()
        if following.startswith("(") or match.group().lower() in KEYWORDS:
            continue
        if match.start() > 0 and stripped[match.start() - 1].isdigit():
            continue  # the "e" of 1e3
        names.add(match.group())
    return names


def panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def test_metric_name_extraction() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, generation) (rate(edge_x_bucket{a="b(c)"}[5m])))'
    assert metric_names(expr) == {"edge_x_bucket"}
    assert metric_names("max(a) / on (x) group_left b > 1e3") == {"a", "b"}


def test_dashboard_loads_and_every_panel_queries_exported_metrics() -> None:
    found = panels()
    assert len(found) >= 10
    unknown = {}
    for panel in found:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, target["expr"]
            if names - KNOWN:
                unknown[panel["title"]] = sorted(names - KNOWN)
    assert unknown == {}


def test_dashboard_covers_what_issue_14_asks() -> None:
    queried = {
        name for panel in panels() for t in panel["targets"] for name in metric_names(t["expr"])
    }
    for name in ("edge_requests_total", "edge_errors_total",
                 "edge_request_duration_seconds_bucket", "worker_event_lag_seconds_bucket",
                 "users_outbox_backlog",
                 "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages",
                 "kong_http_requests_total"):  # fmt: skip
        assert name in queried
    exprs = [t["expr"] for panel in panels() for t in panel["targets"]]
    assert any('kong_http_requests_total{code="429"}' in e for e in exprs)
    assert any("by (generation)" in e and "edge_errors_total" in e for e in exprs)


def test_panels_use_the_provisioned_datasource() -> None:
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in sources["datasources"]}
    for panel in panels():
        assert panel["datasource"]["uid"] in uids
        assert all(t["datasource"]["uid"] in uids for t in panel["targets"])
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "micro.yml").read_text())
    mounts = COMPOSE["services"]["grafana"]["volumes"]
    path = provider["providers"][0]["options"]["path"]
    assert f"../deploy/grafana/dashboards:{path}:ro" in mounts


def scraped_hosts() -> dict[str, set[str]]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    hosts: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        names = hosts.setdefault(job["job_name"], set())
        for static in job.get("static_configs", []):
            names |= {target.rsplit(":", 1)[0] for target in static["targets"]}
        for dns in job.get("dns_sd_configs", []):
            names |= set(dns["names"])
    return hosts


def test_prometheus_scrapes_every_component_by_compose_name() -> None:
    hosts = set().union(*scraped_hosts().values()) - {"localhost"}
    services = set(COMPOSE["services"])
    assert hosts <= services
    one_shot = {name for name, s in COMPOSE["services"].items() if s.get("restart") == "no"}
    tracing = {"otel-collector", "jaeger"}  # traces, not metrics targets
    assert services - one_shot - {"mongo", "grafana", "prometheus", *tracing} == hosts


def test_scraped_ports_are_the_ones_the_components_serve_metrics_on() -> None:
    services = COMPOSE["services"]
    for edge in ("edge-v1", "edge-v2"):
        assert services[edge]["environment"]["EDGE_METRICS_PORT"] == "9100"
        assert "9100" not in json.dumps(services[edge].get("ports", []))
    for worker in ("users-v1", "users-v2", "orders"):
        assert services[worker]["environment"]["METRICS_PORT"] == "9100"
    assert services["kong"]["environment"]["KONG_STATUS_LISTEN"].endswith(":8100")
    assert not any(":8100" in port for port in services["kong"]["ports"])
    assert services["prometheus"]["ports"] == ["127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (bootstrap)")
def test_prometheus_config_loads() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
