"""The local stack's Prometheus: its config generated from the launch spec loads in promtool,
and every worker and edge of the spec serves /metrics on the port that config scrapes."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from launch import prometheus
from launch.settings import StackSettings
from launch.spec import EDGES, SERVICES, build_stack
from scripts import stack

PORTS = {"mongo": 27999, "edge-v1": 8201, "edge-v2": 8202, "gateway": 8200}


def observed(tmp_path, port: int = 9300):
    settings = StackSettings.from_env({"AMQP_URI": "amqp://operator@broker:5672/vh"})
    components = build_stack(settings, tmp_path, PORTS)
    return prometheus.with_prometheus(components, tmp_path, port, "/usr/bin/prometheus")


def scraped(config: dict) -> dict[str, int]:
    """component label -> scraped port."""
    return {
        static["labels"]["component"]: int(static["targets"][0].rsplit(":", 1)[1])
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        if "labels" in static
    }


def test_every_worker_and_edge_serves_the_port_the_config_scrapes(tmp_path) -> None:
    components = {c.name: c for c in observed(tmp_path)}
    targets = scraped(prometheus.scrape_config(9300))
    assert set(targets) == {*SERVICES, *EDGES, "gateway"}
    for service in SERVICES:
        assert components[service].env["METRICS_PORT"] == str(targets[service])
        assert "EDGE_METRICS_PORT" not in components[service].env
    for edge in EDGES:
        assert components[edge].env["EDGE_METRICS_PORT"] == str(targets[edge])
    assert components["gateway"].env["GATEWAY_STATUS_PORT"] == str(targets["gateway"])
    # The gateway's conf is rendered from that env when it starts: the status listener is in it.
    components["gateway"].prepare()
    conf = (tmp_path / "gateway" / "nginx.conf").read_text()
    assert f"listen 127.0.0.1:{targets['gateway']};" in conf
    assert len(set(targets.values())) == len(targets)
    assert not set(targets.values()) & {*PORTS.values(), 9300}


def test_prometheus_starts_last_on_loopback_with_its_files_under_the_run_dir(tmp_path) -> None:
    components = observed(tmp_path, 9400)
    last = components[-1]
    assert last.name == "prometheus" and last.ports == (9400,)
    assert "--web.listen-address=127.0.0.1:9400" in last.argv
    assert all(str(tmp_path) in arg for arg in last.argv[1:3])
    last.prepare()
    config = yaml.safe_load((tmp_path / "prometheus" / "prometheus.yml").read_text())
    assert config == prometheus.scrape_config(9400)


def test_prometheus_port_setting(monkeypatch) -> None:
    monkeypatch.setattr(prometheus, "binary", lambda: "/usr/bin/prometheus")
    settings = StackSettings.from_env
    assert stack.prometheus_port(settings({})) == 9090
    assert stack.prometheus_port(settings({"PROMETHEUS_PORT": "9500"})) == 9500
    assert stack.prometheus_port(settings({"PROMETHEUS_PORT": "off"})) is None
    with pytest.raises(SystemExit, match="PROMETHEUS_PORT"):
        stack.prometheus_port(settings({"PROMETHEUS_PORT": "nine"}))
    monkeypatch.setattr(prometheus, "binary", lambda: None)
    assert stack.prometheus_port(settings({})) is None


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (bootstrap)")
def test_generated_config_and_its_rules_load(tmp_path) -> None:
    path = prometheus.write_config(tmp_path, 9090)
    result = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout  # the rules load with it


def test_the_broker_is_scraped_per_object() -> None:
    jobs = {job["job_name"]: job for job in prometheus.scrape_config(9300)["scrape_configs"]}
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"  # the `queue` label
    assert jobs["rabbitmq"]["static_configs"] == [{"targets": ["127.0.0.1:15692"]}]
