"""pymongo access for users (their email claims live in workers.users.email_claims)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from common.tracing import current_traceparent
from workers.runtime.mongo import MongoRepository
from workers.users.email_claims import EMAIL_CLAIMS, USERS, EmailClaims

__all__ = ["EMAIL_CLAIMS", "EVENT_TRACEPARENT", "USERS", "UsersRepository"]

# The trace a pending user_updated belongs to (schemas/mongo_validators.USER_INTERNAL).
EVENT_TRACEPARENT = "eventTraceparent"


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
        # Only clears the flag if no newer update arrived in between.
        self.users.update_one(
            {"_id": user["_id"], "version": user["version"]},
            {"$unset": {"eventPendingSince": "", EVENT_TRACEPARENT: ""}},
        )

    def pending_events(self, older_than: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.users.find({"eventPendingSince": {"$lte": older_than}}).limit(limit))
