"""ReliableEventHandler's ack / retry / dead-letter decision."""

import sys
from unittest.mock import MagicMock

import pytest

from workers.exceptions import StorageUnavailable
from workers.orders.domain import MalformedEvent
from workers.runtime import reliable_events
from workers.runtime.reliable_events import ReliableEventHandler


@pytest.fixture
def handler(monkeypatch):
    monkeypatch.setattr(reliable_events, "RETRY_DELAY_SECONDS", 0)
    handler = ReliableEventHandler("users_v2", "user_updated")
    handler.container = MagicMock(service_name="orders")  # what bind() gives it, for metrics
    handler.queue_consumer = MagicMock()
    handler.dead_letter_queue = MagicMock()
    return handler


def exc_info(error):
    try:
        raise error
    except Exception:
        return sys.exc_info()


def test_success_is_acked(handler):
    message = MagicMock()
    handler.handle_result(message, MagicMock(), result=3)
    handler.queue_consumer.ack_message.assert_called_once_with(message)
    message.reject.assert_not_called()


def outage_retry(handler, message):
    """The retry a database outage schedules (a managed thread), and the event it carries."""
    event = {"userId": "u-1"}
    handler.handle_result(
        message, MagicMock(args=(event,)), exc_info=exc_info(StorageUnavailable())
    )
    (retry,), _ = handler.container.spawn_managed_thread.call_args
    return retry, event


def test_database_outage_runs_the_event_again_without_requeueing(handler, monkeypatch):
    message = MagicMock()
    retry, event = outage_retry(handler, message)
    # Neither settled: a requeue would count as a delivery (quorum x-delivery-limit).
    handler.queue_consumer.requeue_message.assert_not_called()
    handler.queue_consumer.ack_message.assert_not_called()
    message.reject.assert_not_called()
    rerun = MagicMock()
    monkeypatch.setattr(handler, "handle_message", rerun)
    retry()
    rerun.assert_called_once_with(event, message)


def test_no_retry_once_the_connection_dropped(handler, monkeypatch):
    message = MagicMock()
    retry, _ = outage_retry(handler, message)
    message.channel.connection = None  # the broker redelivers it on the next connection
    rerun = MagicMock()
    monkeypatch.setattr(handler, "handle_message", rerun)
    retry()
    rerun.assert_not_called()


@pytest.mark.parametrize("error", [MalformedEvent({"userId": ["bad"]}), KeyError("bug")])
def test_anything_else_is_dead_lettered(handler, error, caplog):
    message = MagicMock()
    handler.handle_result(message, MagicMock(), exc_info=exc_info(error))
    message.reject.assert_called_once_with(requeue=False)
    handler.queue_consumer.ack_message.assert_not_called()
    handler.queue_consumer.requeue_message.assert_not_called()
    assert "rejected to" in caplog.text


def test_dead_letter_names_follow_the_queue():
    assert reliable_events.dead_letter_names("evt-q") == ("evt-q.dead-letter", "evt-q.dead-letter")
