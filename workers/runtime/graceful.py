"""A queue consumer whose connection outlives its consumers until every message it took is
settled, so `nameko run` on SIGTERM finishes in-flight work and its acks and replies land."""

from __future__ import annotations

from typing import Any

from nameko.messaging import QueueConsumer


def _settled(message: Any) -> bool:
    # A message of a channel that closed is the broker's again: nothing left to settle here.
    return bool(message.acknowledged) or message.channel.connection is None


class GracefulQueueConsumer(QueueConsumer):
    """nameko 2.14.1's QueueConsumer stops its consume loop, closing the connection, as soon
    as the last entrypoint cancels its consumer: that happens on SIGTERM *before* the
    container waits for running workers. A worker finishing afterwards then skips its ack
    (the broker redelivers: the work runs twice) and an RPC reply on that channel is lost
    (the caller times out). Here the loop only stops once nothing it delivered is unsettled;
    the broker sends no new message after the cancel, and `nameko run`'s stop still waits for
    the workers as before (bounded by the launcher's SIGKILL)."""

    def __init__(self) -> None:
        super().__init__()
        self._unsettled: set[Any] = set()

    def handle_message(self, provider: Any, body: Any, message: Any) -> None:
        self._unsettled.add(message)
        super().handle_message(provider, body, message)

    def unsettled(self) -> int:
        self._unsettled = {message for message in self._unsettled if not _settled(message)}
        return len(self._unsettled)

    def on_iteration(self) -> None:
        self._cancel_consumers_if_requested()
        if not self._consumers and not self.unsettled():
            self.should_stop = True
