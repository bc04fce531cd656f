"""ReliableEventHandler's ack / requeue / dead-letter decision."""

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


def test_database_outage_requeues(handler):
    message = MagicMock()
    handler.handle_result(message, MagicMock(), exc_info=exc_info(StorageUnavailable()))
    handler.queue_consumer.requeue_message.assert_called_once_with(message)
    handler.queue_consumer.ack_message.assert_not_called()


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
