"""pymongo access for users and for the per-email claims that keep emails unique."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from workers.mongo import MongoRepository

USERS = "users"
# One document per claimed email, keyed by the lower-cased email: `_id` uniqueness holds on
# every MongoDB-compatible server, unlike unique indexes on array fields.
EMAIL_CLAIMS = "user_emails"
# A claim whose owner never stored the email (crash between claim and write) may be taken
# over after this long.
STALE_CLAIM_AGE = timedelta(seconds=60)


def claim_key(email: str) -> str:
    return email.lower()


class UsersRepository(MongoRepository):
    @property
    def users(self) -> Any:
        return self.database[USERS]

    @property
    def claims(self) -> Any:
        return self.database[EMAIL_CLAIMS]

    def find(self, user_id: str) -> dict[str, Any] | None:
        if not isinstance(user_id, str):
            return None
        # `_id` stays on the document (responses whitelist their fields): writes address the
        # document by it, a primary-key lookup on any server.
        return self.users.find_one({"userId": user_id})

    def insert(self, document: dict[str, Any]) -> None:
        self.users.insert_one(dict(document))

    def _stored_email_keys(self, user_id: str) -> set[str]:
        user = self.users.find_one({"userId": user_id}, {"emails": True})
        return {claim_key(e) for e in user.get("emails", [])} if user else set()

    def owns_email(self, user_id: str, email: str) -> bool:
        return claim_key(email) in self._stored_email_keys(user_id)

    def claim_emails(self, user_id: str, emails: list[str], now: datetime) -> list[str]:
        """Claim every email for user_id; on any conflict release what was taken here and
        return the conflicting emails (empty list = all claimed)."""
        taken: list[str] = []
        conflicts: list[str] = []
        for email in emails:
            outcome = self._claim_one(user_id, email, now)
            if outcome == "claimed":
                taken.append(email)
            elif outcome == "conflict":
                conflicts.append(email)
        if conflicts:
            self.release_emails(user_id, taken)
        return conflicts

    def _claim_one(self, user_id: str, email: str, now: datetime) -> str:
        key = claim_key(email)
        for _ in range(2):
            try:
                self.claims.insert_one({"_id": key, "userId": user_id, "claimedAt": now})
                return "claimed"
            except DuplicateKeyError:
                holder = self.claims.find_one({"_id": key})
                if holder is None:
                    continue  # released meanwhile: try again
                if holder["userId"] == user_id:
                    return "already-held"
                if self._is_stale(holder, now):
                    self.claims.delete_one({"_id": key, "userId": holder["userId"]})
                    continue
                return "conflict"
        return "conflict"

    def _is_stale(self, holder: dict[str, Any], now: datetime) -> bool:
        claimed_at = holder.get("claimedAt")
        old_enough = claimed_at is None or now - claimed_at > STALE_CLAIM_AGE
        return old_enough and not self.owns_email(holder["userId"], holder["_id"])

    def release_emails(self, user_id: str, emails: list[str]) -> None:
        """Drop claims of user_id on emails its stored document no longer lists."""
        if not emails:
            return  # most updates change no email: no read at all
        stored = self._stored_email_keys(user_id)
        for email in emails:
            if claim_key(email) not in stored:
                self.claims.delete_one({"_id": claim_key(email), "userId": user_id})

    def apply_contact_change(
        self, user: dict[str, Any], changes: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        """Compare-and-set on `version`: returns the new document, or None if another update
        won the race (the caller re-reads and retries)."""
        return self.users.find_one_and_update(
            {"_id": user["_id"], "version": user["version"]},
            {"$set": {**changes, "eventPendingSince": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    def mark_event_published(self, user: dict[str, Any]) -> None:
        # Only clears the flag if no newer update arrived in between.
        self.users.update_one(
            {"_id": user["_id"], "version": user["version"]},
            {"$unset": {"eventPendingSince": ""}},
        )

    def pending_events(self, older_than: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.users.find({"eventPendingSince": {"$lte": older_than}}).limit(limit))
