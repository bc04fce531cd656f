"""deploy/k8s's worker exec probe, run as Kubernetes runs it, against real running workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROBE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "worker_probe.py"

pytestmark = pytest.mark.integration


def probe(amqp_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROBE), *args],
        env={**os.environ, "AMQP_URI": amqp_uri},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_probe_passes_for_running_workers_and_fails_for_a_missing_one(stack, service_config):
    uri = service_config["AMQP_URI"]
    assert probe(uri, "live").returncode == 0
    for service in ("users_v1", "users_v2", "orders"):
        started = time.monotonic()
        result = probe(uri, "ready", service)
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 10  # inside the readinessProbe's timeoutSeconds
    missing = probe(uri, "ready", "users_v3")
    assert missing.returncode == 1
    assert "UnknownService" in missing.stderr


def test_probe_is_not_ready_once_the_worker_stops(stack, service_config):
    stack["orders"].stop()
    result = probe(service_config["AMQP_URI"], "ready", "orders")
    assert result.returncode == 1
    assert "orders does not answer ping" in result.stderr


def test_each_worker_is_ready_on_its_own_least_privilege_account(broker, services):
    """As in the pods: the probe logs in with the worker's account, not an administrator's."""
    for service in ("users_v1", "users_v2", "orders"):
        result = probe(broker.uris[service], "ready", service)
        assert result.returncode == 0, (service, result.stderr)
