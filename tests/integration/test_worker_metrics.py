"""/metrics of a worker process over HTTP, after real RPC calls and events on the broker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from kombu import Connection, Producer
from nameko.events import get_event_exchange
from nameko.standalone.events import event_dispatcher
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.support.data import ADDRESS
from tests.support.polling import wait_until
from workers.exceptions import EmailTaken, UserNotFound
from workers.orders import OrdersService
from workers.runtime import metrics
from workers.users_v1 import UsersV1
from workers.users_v2 import UsersV2

pytestmark = pytest.mark.integration


@pytest.fixture
def serving(container_factory, service_config):
    """The three services in one process, as `nameko run` runs them, serving one /metrics."""
    config = {**service_config, "METRICS_PORT": 0}
    with metrics.recording_to(metrics.MetricSet(CollectorRegistry())):
        containers = [container_factory(cls, config) for cls in (UsersV1, UsersV2, OrdersService)]
        for container in containers:
            container.start()
        yield metrics.serving_port()
        for container in containers:
            container.stop()
    assert metrics.serving_port() is None  # the last container to stop closed it


def scrape(port: int) -> dict[str, list[Any]]:
    """{sample name: samples} from the process's /metrics, parsed as Prometheus does."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def values(samples: list[Any], *label_names: str) -> dict[tuple, float]:
    return {tuple(s.labels[name] for name in label_names): s.value for s in samples}


def test_a_worker_process_exposes_its_calls_and_events(serving, rpc, service_config):
    email = f"m-{uuid.uuid4().hex[:10]}@example.com"
    user = rpc.users_v2.create({"emails": [email], "deliveryAddress": ADDRESS})
    with pytest.raises(EmailTaken):
        rpc.users_v1.create({"emails": [email], "deliveryAddress": ADDRESS})
    with pytest.raises(UserNotFound):
        rpc.users_v1.get(str(uuid.uuid4()))
    rpc.users_v2.update(user["userId"], {"deliveryAddress": {**ADDRESS, "city": "Elm"}})
    # one poison event: undecodable JSON on the users_v1 exchange
    with Connection(service_config["AMQP_URI"]) as connection:
        Producer(connection.default_channel, exchange=get_event_exchange("users_v1", {})).publish(
            b"{not json", routing_key="user_updated", content_type="application/json"
        )
    event_dispatcher(service_config)("users_v1", "user_updated", {"userId": "bad"})

    def events() -> dict[tuple, float]:
        found = scrape(serving).get("worker_events_total", [])
        return values(found, "service", "source_service", "event_type", "outcome")

    wait_until(lambda: sum(events().values()) == 3, timeout=15)
    assert events() == {
        ("orders", "users_v2", "user_updated", "applied"): 1,
        ("orders", "users_v1", "user_updated", "dead_lettered"): 2,
    }
    samples = scrape(serving)
    calls = values(samples["worker_rpc_calls_total"], "service", "generation", "method", "outcome")
    assert calls == {
        ("users_v2", "v2", "create", "ok"): 1,
        ("users_v1", "v1", "create", "EmailTaken"): 1,
        ("users_v1", "v1", "get", "UserNotFound"): 1,
        ("users_v2", "v2", "update", "ok"): 1,
    }
    durations = values(samples["worker_rpc_duration_seconds_count"], "service", "method")
    assert durations == {("users_v2", "create"): 1, ("users_v1", "create"): 1,
                         ("users_v1", "get"): 1, ("users_v2", "update"): 1}  # fmt: skip
    conflicts = values(samples["users_email_claim_conflicts_total"], "service", "generation")
    assert conflicts == {("users_v1", "v1"): 1}
    # only the applied event carried an updatedAt; it arrived within seconds
    lag = values(samples["worker_event_lag_seconds_count"], "source_service")
    assert lag == {("users_v2",): 1}
    (lag_sum,) = values(samples["worker_event_lag_seconds_sum"], "source_service").values()
    assert 0 <= lag_sum < 10
    # the default registry is not served here: a test's registry holds the worker series only
    assert "process_cpu_seconds_total" not in samples


def test_the_server_listens_on_loopback_only(serving):
    assert metrics.server.httpd.socket.getsockname()[0] == "127.0.0.1"
    assert requests.get(f"http://127.0.0.1:{serving}/metrics", timeout=5).status_code == 200


def test_outbox_backlog_follows_a_publish_no_queue_takes(container_factory, service_config, rpc):
    """With no orders consumer bound, user_updated is unroutable (mandatory publish): the
    update stays pending and the relay timer reports it, until orders binds its queue."""
    with metrics.recording_to(metrics.MetricSet(CollectorRegistry())) as recorded:
        container_factory(UsersV2, service_config).start()
        email = f"b-{uuid.uuid4().hex[:10]}@example.com"
        user = rpc.users_v2.create({"emails": [email], "deliveryAddress": ADDRESS})
        rpc.users_v2.update(user["userId"], {"deliveryAddress": {**ADDRESS, "city": "Elm"}})

        def backlog() -> float | None:
            labels = {"service": "users_v2", "generation": "v2"}
            return recorded.registry.get_sample_value("users_outbox_backlog", labels)

        wait_until(lambda: backlog() == 1, timeout=20)  # grace 2 s, then the next 5 s tick
        container_factory(OrdersService, service_config).start()
        wait_until(lambda: backlog() == 0, timeout=20)
