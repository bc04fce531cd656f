"""pymongo access for users (their email claims live in workers.users.email_claims)."""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any

import eventlet
from pymongo import ReturnDocument, UpdateOne

from common.tracing import current_traceparent
from workers.runtime.mongo import MongoRepository
from workers.users.email_claims import EMAIL_CLAIMS, USERS, EmailClaims

__all__ = ["EMAIL_CLAIMS", "EVENT_TRACEPARENT", "USERS", "UsersRepository"]

# The trace a pending user_updated belongs to (schemas/mongo_validators.USER_INTERNAL).
EVENT_TRACEPARENT = "eventTraceparent"
CLEAR_PENDING = {"$unset": {"eventPendingSince": "", EVENT_TRACEPARENT: ""}}
# How long the first flag clear waits for others to share its write; well under the
# relay's 2 s grace, so a confirmed event is not re-sent for want of its clear.
FLAG_CLEAR_WINDOW_SECONDS = 0.02


class FlagClears:
    """Outbox flag clears of confirmed events, written together (a group commit): the first
    clear to arrive waits FLAG_CLEAR_WINDOW_SECONDS, then writes every clear queued by then
    in one bulk_write (one command), and goes on while more arrived during the write. It runs
    in the after-reply work of a worker (workers/runtime/after_reply.py), so a stop waits for
    it; a clear it could not write leaves the flag, and the relay re-sends that event."""

    def __init__(self) -> None:
        self.queued: list[tuple[Any, int]] = []
        self.writing = False

    def clear(self, users: Any, user: dict[str, Any]) -> None:
        self.queued.append((user["_id"], user["version"]))
        if self.writing:
            return  # the clear being written takes this one with its next batch
        self.writing = True
        try:
            eventlet.sleep(FLAG_CLEAR_WINDOW_SECONDS)
            while self.queued:
                batch, self.queued = self.queued, []
                clear_flags(users, batch)
        finally:
            self.writing = False


def clear_flags(users: Any, batch: list[tuple[Any, int]]) -> None:
    """Clear the outbox flags of (`_id`, version) pairs in one command; each only while no
    newer update arrived in between (its version)."""
    if len(batch) == 1:
        users.update_one({"_id": batch[0][0], "version": batch[0][1]}, CLEAR_PENDING)
    elif batch:
        ops = [UpdateOne({"_id": i, "version": v}, CLEAR_PENDING) for i, v in batch]
        users.bulk_write(ops, ordered=False)


# One queue per database (a container's MongoStore holds one), shared by its workers.
_flag_clears: weakref.WeakKeyDictionary[Any, FlagClears] = weakref.WeakKeyDictionary()


class UsersRepository(MongoRepository):
    @property
    def users(self) -> Any:
        return self.database[USERS]

    @property
    def email_claims(self) -> EmailClaims:
        return EmailClaims(self.database)

    def find(self, user_id: str) -> dict[str, Any] | None:
        if not isinstance(user_id, str):
            return None
        # `_id` stays on the document (responses whitelist their fields): writes address the
        # document by it, a primary-key lookup on any server.
        return self.users.find_one({"userId": user_id})

    def insert(self, document: dict[str, Any]) -> None:
        self.users.insert_one(dict(document))

    def apply_contact_change(
        self, user: dict[str, Any], changes: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        """Compare-and-set on `version`: returns the new document, or None if another update
        won the race (the caller re-reads and retries).

        The pending event keeps this call's traceparent, so a relayed event stays in its trace.
        """
        pending: dict[str, Any] = {"eventPendingSince": now}
        update: dict[str, Any] = {"$set": {**changes, **pending}, "$inc": {"version": 1}}
        traceparent = current_traceparent()
        if traceparent:
            update["$set"][EVENT_TRACEPARENT] = traceparent
        else:  # never leave an older update's trace on this event
            update["$unset"] = {EVENT_TRACEPARENT: ""}
        return self.users.find_one_and_update(
            {"_id": user["_id"], "version": user["version"]},
            update,
            return_document=ReturnDocument.AFTER,
        )

    def mark_event_published(self, user: dict[str, Any]) -> None:
        clears = _flag_clears.get(self.database)
        if clears is None:
            clears = _flag_clears[self.database] = FlagClears()
        clears.clear(self.users, user)

    def mark_events_published(self, users: list[dict[str, Any]]) -> None:
        """Clear a known set at once (the relay's), without FlagClears' wait."""
        clear_flags(self.users, [(user["_id"], user["version"]) for user in users])

    def pending_events(self, older_than: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.users.find({"eventPendingSince": {"$lte": older_than}}).limit(limit))
