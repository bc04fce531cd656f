"""workers/runtime/metrics.py: the exact series real calls leave in a registry, and /metrics."""

from __future__ import annotations

import logging
import socket
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from unittest.mock import MagicMock

import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import entrypoint_hook, replace_dependencies
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from tests.support.data import address
from workers.exceptions import (
    EmailTaken,
    OrderNotFound,
    StorageUnavailable,
    UserNotFound,
    ValidationFailed,
)
from workers.orders import OrdersService
from workers.orders.repository import OrdersRepository
from workers.runtime import metrics, reliable_events
from workers.runtime.reliable_events import DeadLetteringQueueConsumer
from workers.users_v1 import UsersV1
from workers.users_v2 import UsersV2

ADDRESS = address()


@pytest.fixture
def recorded():
    """A fresh registry that every worker metric is recorded into during the test."""
    with metrics.recording_to(metrics.MetricSet(CollectorRegistry())) as metric_set:
        yield metric_set.registry


def series(registry: CollectorRegistry, sample_name: str) -> dict[tuple, float]:
    """Every sample of that name: {sorted label items: value}."""
    found = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == sample_name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def labels(**values: str) -> tuple:
    return tuple(sorted(values.items()))


def provider_of(container: ServiceContainer) -> metrics.WorkerMetrics:
    return next(d for d in container.dependencies if isinstance(d, metrics.WorkerMetrics))


@pytest.fixture
def started():
    """Builds a container whose dependencies are the given ones and whose metrics provider is
    set up, with no broker: entrypoint_hook runs workers through it as a message would."""
    providers = []

    def start(service_cls, config=None, **dependencies):
        # Never connected to: no entrypoint or dispatcher is started.
        container = ServiceContainer(service_cls, {"AMQP_URI": "memory://", **(config or {})})
        replace_dependencies(container, **dependencies)
        providers.append(provider_of(container))
        providers[-1].setup()
        return container

    yield start
    for provider in providers:
        provider.stop()


def call(container, method: str, *args: Any) -> Any:
    with entrypoint_hook(container, method) as hook:
        return hook(*args)


def payload(email: str) -> dict[str, Any]:
    return {"emails": [email], "deliveryAddress": ADDRESS}


class BrokenRepository:
    """A repository with a bug: any lookup fails with an error no entrypoint expects."""

    email_claims = None

    def find(self, user_id: str) -> None:
        raise KeyError("bug")


@pytest.mark.parametrize(("service_cls", "generation"), [(UsersV1, "v1"), (UsersV2, "v2")])
def test_rpc_calls_are_counted_by_method_and_outcome(
    started, users_repository, recorded, service_cls, generation
):
    users = started(service_cls, repository=users_repository,
                    dispatch=MagicMock())  # fmt: skip
    user = call(users, "create", payload("ann@example.com"))
    call(users, "update", user["userId"], {"emails": ["bo@example.com"]})
    with pytest.raises(EmailTaken):
        call(users, "create", payload("BO@example.com"))
    with pytest.raises(ValidationFailed):
        call(users, "create", {"emails": ["not an email"]})
    with pytest.raises(UserNotFound):
        call(users, "get", str(uuid.uuid4()))
    broken = started(service_cls, repository=BrokenRepository())
    with pytest.raises(KeyError):
        call(broken, "get", str(uuid.uuid4()))

    name = service_cls.name
    of = partial(labels, service=name, generation=generation)
    assert series(recorded, "worker_rpc_calls_total") == {
        of(method="create", outcome="ok"): 1,
        of(method="update", outcome="ok"): 1,
        of(method="create", outcome="EmailTaken"): 1,
        of(method="create", outcome="ValidationFailed"): 1,
        of(method="get", outcome="UserNotFound"): 1,
        of(method="get", outcome="unexpected"): 1,
    }
    assert series(recorded, "worker_rpc_duration_seconds_count") == {
        of(method="create"): 3,
        of(method="update"): 1,
        of(method="get"): 2,
    }
    durations = series(recorded, "worker_rpc_duration_seconds_sum")
    assert all(0 < seconds < 5 for seconds in durations.values())
    assert series(recorded, "users_email_claim_conflicts_total") == {of(): 1}


def test_an_update_refused_for_a_taken_email_is_a_conflict(started, users_repository, recorded):
    users = started(UsersV2, repository=users_repository,
                    dispatch=MagicMock())  # fmt: skip
    call(users, "create", payload("taken@example.com"))
    user = call(users, "create", payload("mine@example.com"))
    with pytest.raises(EmailTaken):
        call(users, "update", user["userId"], {"emails": ["taken@example.com"]})
    assert series(recorded, "users_email_claim_conflicts_total") == {
        labels(service="users_v2", generation="v2"): 1
    }
    assert (
        series(recorded, "worker_rpc_calls_total")[
            labels(service="users_v2", generation="v2", method="update", outcome="EmailTaken")
        ]
        == 1
    )


def test_orders_calls_carry_an_empty_generation(started, orders_repository, recorded):
    orders = started(OrdersService, repository=orders_repository,
                     users=MagicMock())  # fmt: skip
    with pytest.raises(OrderNotFound):
        call(orders, "get", str(uuid.uuid4()))
    assert call(orders, "list", "under process") == []
    of = partial(labels, service="orders", generation="")
    assert series(recorded, "worker_rpc_calls_total") == {
        of(method="get", outcome="OrderNotFound"): 1,
        of(method="list", outcome="ok"): 1,
    }


def test_the_relay_reports_what_it_could_not_publish(started, users_repository, recorded):
    dispatch = MagicMock(side_effect=ConnectionError("broker gone"))
    users = started(UsersV1, repository=users_repository, dispatch=dispatch)
    for n in range(3):
        user = call(users, "create", payload(f"u{n}@example.com"))
        call(users, "update", user["userId"], {"deliveryAddress": {**ADDRESS, "city": "Elm"}})
    # older than the relay's grace, as if the publishes had failed a minute ago
    users_repository.users.update_many(
        {}, {"$set": {"eventPendingSince": datetime.now(UTC) - timedelta(minutes=1)}}
    )
    backlog = labels(service="users_v1", generation="v1")

    assert call(users, "relay_pending_events") == 0
    assert series(recorded, "users_outbox_backlog") == {backlog: 3}
    dispatch.side_effect = None
    assert call(users, "relay_pending_events") == 3
    assert series(recorded, "users_outbox_backlog") == {backlog: 0}
    # the timer is no RPC call
    assert {key[1] for key in series(recorded, "worker_rpc_calls_total")} == {
        ("method", "create"),
        ("method", "update"),
    }


class UnreachableOrders(OrdersRepository):
    def apply_user_contact(self, *args: Any) -> int:
        raise StorageUnavailable()


def user_updated(updated_at: datetime) -> dict[str, Any]:
    stamp = updated_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"userId": str(uuid.uuid4()), "userEmails": ["ann@example.com"],
            "deliveryAddress": ADDRESS, "version": 2, "updatedAt": stamp}  # fmt: skip


def handle(container, method: str, event: Any) -> MagicMock:
    """One event through the handler's worker and its ack / requeue / dead-letter decision."""
    handler = next(e for e in container.entrypoints if e.method_name == method)
    handler.queue_consumer = MagicMock()
    handler.dead_letter_queue = MagicMock()
    message = MagicMock()
    container.spawn_worker(
        handler, (event,), {}, handle_result=partial(handler.handle_result, message)
    )
    container._worker_pool.waitall()
    return message


def test_events_applied_retried_and_dead_lettered(started, mock_database, recorded, monkeypatch):
    # The retry of the unreachable case waits in a managed thread; stopping the container ends it.
    monkeypatch.setattr(reliable_events, "RETRY_DELAY_SECONDS", 600)
    orders = started(OrdersService,
                     repository=OrdersRepository(mock_database), users=MagicMock())  # fmt: skip
    down = started(OrdersService,
                   repository=UnreachableOrders(mock_database), users=MagicMock())  # fmt: skip
    three_seconds_ago = datetime.now(UTC) - timedelta(seconds=3)
    handle(orders, "handle_user_updated_v1", user_updated(three_seconds_ago))
    handle(orders, "handle_user_updated_v2", user_updated(three_seconds_ago))
    handle(down, "handle_user_updated_v2", user_updated(three_seconds_ago))
    rejected = handle(orders, "handle_user_updated_v2", {"userId": "not a user id"})
    rejected.reject.assert_called_once_with(requeue=False)

    of = partial(labels, service="orders", event_type="user_updated")
    assert series(recorded, "worker_events_total") == {
        of(source_service="users_v1", outcome="applied"): 1,
        of(source_service="users_v2", outcome="applied"): 1,
        of(source_service="users_v2", outcome="retried"): 1,
        of(source_service="users_v2", outcome="dead_lettered"): 1,
    }
    # the malformed event has no updatedAt: no lag for it
    assert series(recorded, "worker_event_lag_seconds_count") == {
        of(source_service="users_v1"): 1,
        of(source_service="users_v2"): 2,
    }
    v1_buckets = {
        dict(key)["le"]: value
        for key, value in series(recorded, "worker_event_lag_seconds_bucket").items()
        if dict(key)["source_service"] == "users_v1"
    }
    assert (v1_buckets["2.5"], v1_buckets["5.0"]) == (0, 1)


def test_an_undecodable_event_is_counted_dead_lettered(started, recorded):
    orders = started(OrdersService, repository=MagicMock(), users=MagicMock())
    consumer = next(e for e in orders.extensions if isinstance(e, DeadLetteringQueueConsumer))
    message = MagicMock(
        delivery_info={"exchange": "users_v1.events", "routing_key": "user_updated"},
        content_type="application/json",
    )
    consumer.on_decode_error(message, ValueError("not JSON"))
    message.reject.assert_called_once_with(requeue=False)
    assert series(recorded, "worker_events_total") == {
        labels(
            service="orders",
            source_service="users_v1",
            event_type="user_updated",
            outcome="dead_lettered",
        ): 1  # fmt: skip
    }
    assert series(recorded, "worker_event_lag_seconds_count") == {}


@pytest.mark.parametrize(
    ("event", "lag"),
    [
        ({"updatedAt": "2999-01-01T00:00:00.000Z"}, 0.0),  # a clock ahead: never negative
        ({"updatedAt": "yesterday"}, None),
        ({"updatedAt": 17}, None),
        ({}, None),
        ("text", None),
    ],
)
def test_event_lag_of_odd_timestamps(event, lag):
    assert metrics.event_lag_seconds(event) == lag


def test_event_lag_of_a_naive_timestamp_is_utc():
    a_minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None)
    assert 59 < metrics.event_lag_seconds({"updatedAt": a_minute_ago.isoformat()}) < 70


def scrape(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return {f.name: f for f in text_string_to_metric_families(response.read().decode())}


def test_one_server_per_process_shared_by_its_services(
    started, users_repository, mock_database, recorded, caplog
):
    caplog.set_level(logging.INFO, logger=metrics.log.name)
    assert metrics.serving_port() is None
    config = {"METRICS_PORT": 0}
    users = started(UsersV2, config, repository=users_repository,
                    dispatch=MagicMock())  # fmt: skip
    port = metrics.serving_port()
    assert port and f"metrics on http://127.0.0.1:{port}/metrics" in caplog.text
    orders = started(OrdersService, config,
                     repository=OrdersRepository(mock_database), users=MagicMock())  # fmt: skip
    assert metrics.serving_port() == port
    call(users, "create", payload("ann@example.com"))
    with pytest.raises(OrderNotFound):
        call(orders, "get", str(uuid.uuid4()))

    families = scrape(port)
    calls = {
        (s.labels["service"], s.labels["method"], s.labels["outcome"]): s.value
        for s in families["worker_rpc_calls"].samples
        if s.name == "worker_rpc_calls_total"
    }
    assert calls == {("users_v2", "create", "ok"): 1, ("orders", "get", "OrderNotFound"): 1}
    assert families["worker_rpc_duration_seconds"].type == "histogram"

    provider_of(users).stop()
    assert metrics.serving_port() == port  # orders still serves
    provider_of(orders).stop()
    assert metrics.serving_port() is None
    with pytest.raises(OSError):
        scrape(port)


def test_no_port_configured_serves_nothing(started, users_repository, recorded):
    users = started(UsersV1, {"METRICS_PORT": None},
                    repository=users_repository, dispatch=MagicMock())  # fmt: skip
    call(users, "create", payload("ann@example.com"))
    assert metrics.serving_port() is None
    assert series(recorded, "worker_rpc_calls_total") == {
        labels(service="users_v1", generation="v1", method="create", outcome="ok"): 1
    }


def test_rpc_series_read_as_prometheus_client_metrics_would():
    """The lock-free RPC collector exposes what a Counter and a Histogram would."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    recorded = metrics.MetricSet(ours).rpc
    calls = Counter("worker_rpc_calls", "", ["service", "generation", "method", "outcome"],
                    registry=theirs)  # fmt: skip
    durations = Histogram("worker_rpc_duration_seconds", "", ["service", "generation", "method"],
                          buckets=metrics.RPC_BUCKETS, registry=theirs)  # fmt: skip
    # on a bound, just past one, the first and last buckets and past the last (+Inf)
    for seconds, outcome in [(0.0005, "ok"), (0.001, "ok"), (0.0011, "UserNotFound"),
                             (0.7, "ok"), (30, "unexpected"), (31, "ok")]:  # fmt: skip
        recorded.record("users_v1", "v1", "get", outcome, seconds)
        calls.labels("users_v1", "v1", "get", outcome).inc()
        durations.labels("users_v1", "v1", "get").observe(seconds)

    def exposed(registry: CollectorRegistry) -> set[tuple]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for family in registry.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        }

    assert exposed(ours) == exposed(theirs)
    assert (
        series(ours, "worker_rpc_duration_seconds_bucket")[
            labels(service="users_v1", generation="v1", method="get", le="0.001")
        ]
        == 2
    )


def test_a_port_already_taken_fails_the_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = {"AMQP_URI": "memory://", "METRICS_PORT": taken.getsockname()[1]}
        container = ServiceContainer(UsersV1, config)  # extensions hold it by a weak reference
        provider = provider_of(container)
        with pytest.raises(OSError):
            provider.setup()
    provider.stop()  # what nameko does to a container that failed to start
    assert metrics.serving_port() is None
    assert metrics.server.users == 0  # the failed start holds no share of a server
