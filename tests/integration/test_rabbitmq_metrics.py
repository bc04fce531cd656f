"""The broker's own metrics (rabbitmq_prometheus, enabled by the bootstrap) carry every
RabbitMQ series the alert rules and the dashboard query, with the `queue` label."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from launch.prometheus import RABBITMQ_METRICS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
QUERIED = ROOT / "deploy" / "prometheus" / "rules", ROOT / "deploy" / "grafana"


def queried_rabbitmq_series() -> set[str]:
    names = set()
    for folder in QUERIED:
        for path in folder.rglob("*"):
            if path.suffix in {".yml", ".yaml", ".json"}:
                names |= set(re.findall(r"\brabbitmq_[a-z_]+\b", path.read_text()))
    return names - {"rabbitmq_prometheus"}  # the plugin's name, in comments


def test_every_rabbitmq_series_the_rules_and_dashboard_use_is_exported():
    wanted = queried_rabbitmq_series()
    assert {"rabbitmq_queue_messages_ready", "rabbitmq_queue_consumers"} <= wanted
    target, path = RABBITMQ_METRICS
    response = requests.get(f"http://{target}{path}", timeout=10)
    assert response.status_code == 200, "rabbitmq_prometheus is off: run scripts/bootstrap.sh"
    samples = [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]
    exported = {sample.name for sample in samples}
    assert wanted <= exported, sorted(wanted - exported)
    assert any("queue" in sample.labels for sample in samples if sample.name in wanted)
