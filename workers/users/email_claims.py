"""Email ownership: one claim document per normalised email, safe under any interleaving.

A claim is `{_id: email key, userId, ops: [operation ids], rev, changedAt}`. An operation
(one create or one update attempt) adds its id before it writes the user and removes it
after; a claim is deleted only when no operation holds it, its user's stored document
(read *after* the claim) does not list it, and `rev` (a fresh token on every change, so a
claim deleted and made again never looks unchanged) is still the one read. So a claim
that a committed document relies on can never be deleted, whoever races whom.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from schemas.emails import email_key
from workers.runtime.documents import as_datetime, utcnow
from workers.runtime.mongo import MongoRepository

USERS = "users"
EMAIL_CLAIMS = "user_emails"
# An operation older than this is presumed dead: its claims may be taken over.
STALE_CLAIM_AGE = timedelta(seconds=60)
# A live operation gives up before committing at half the stale age, so no operation
# that others presume dead can still commit (the one timing assumption of the protocol).
MAX_OPERATION_AGE = STALE_CLAIM_AGE / 2
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Operation:
    """One attempt at writing a user; its id records when it started."""

    id: str
    started: datetime

    @classmethod
    def start(cls, now: datetime | None = None) -> Operation:
        started = now or utcnow()
        millis = int((started - _EPOCH) / timedelta(milliseconds=1))
        return cls(f"{millis:013d}-{uuid.uuid4().hex}", started)

    @staticmethod
    def started_at(operation_id: str) -> datetime:
        try:
            return _EPOCH + timedelta(milliseconds=int(operation_id.split("-", 1)[0]))
        except ValueError:
            return _EPOCH  # not ours: treated as long dead

    def expired(self, now: datetime) -> bool:
        return now - self.started > MAX_OPERATION_AGE


def sorted_by_key(emails: list[str]) -> list[tuple[str, str]]:
    """(key, email) pairs in key order: claiming in one global order means that among
    creates that want overlapping emails, at least one always gets all of its own."""
    return sorted({email_key(email): email for email in emails}.items())


def live_operations(claim: dict[str, Any], now: datetime) -> list[str]:
    """The operations holding a claim that may still commit (the others are presumed dead)."""
    return [o for o in claim.get("ops", []) if now - Operation.started_at(o) <= STALE_CLAIM_AGE]


def claim_changed_at(claim: dict[str, Any], default: datetime) -> datetime:
    # nx-27017 returns `$set` dates as strings; pre-migration claims have `claimedAt`.
    return as_datetime(claim.get("changedAt") or claim.get("claimedAt") or default)


def new_rev() -> str:
    return uuid.uuid4().hex


def new_claim(key: str, user_id: str, ops: list[str], now: datetime) -> dict[str, Any]:
    return {"_id": key, "userId": user_id, "ops": ops, "rev": new_rev(), "changedAt": now}


def unchanged_filter(claim: dict[str, Any]) -> dict[str, Any]:
    """Matches the claim only as it was read (rev is a fresh token on every change)."""
    return {"rev": claim["rev"]} if "rev" in claim else {"rev": {"$exists": False}}


class EmailClaims(MongoRepository):
    @property
    def claims(self) -> Any:
        return self.database[EMAIL_CLAIMS]

    def stored_keys(self, user_id: str) -> set[str]:
        user = self.database[USERS].find_one({"userId": user_id}, {"emails": True})
        return {email_key(e) for e in user.get("emails", [])} if user else set()

    def claim(
        self, user_id: str, emails: list[str], op: Operation, now: datetime, *, hold: bool = True
    ) -> list[str]:
        """Claim every email for user_id under op, in key order. On a conflict, give back
        what op took and return the emails held by others (empty list: all claimed).
        `hold=False` (a create: no other operation can know the new user) records no
        operation id, so nothing has to be let go afterwards: a fresh claim is protected
        from takeover by its age alone."""
        wanted = sorted_by_key(emails)
        taken: list[str] = []
        for position, (key, email) in enumerate(wanted):
            if self._claim_one(user_id, key, op, now, hold):
                taken.append(key)
                continue
            self.abandon(user_id, taken, op)
            rest = wanted[position + 1 :]
            return [email] + [e for k, e in rest if self._held_by_other(user_id, k, now)]
        return []

    def _claim_one(
        self, user_id: str, key: str, op: Operation, now: datetime, hold: bool = True
    ) -> bool:
        for _ in range(3):
            try:
                self.claims.insert_one(new_claim(key, user_id, [op.id] if hold else [], now))
                return True
            except DuplicateKeyError:
                holder = self.claims.find_one({"_id": key})
            if holder is None:
                continue  # released meanwhile
            if holder["userId"] == user_id:
                joined = self.claims.update_one(
                    {"_id": key, "userId": user_id},
                    {"$addToSet": {"ops": op.id}, "$set": {"rev": new_rev(), "changedAt": now}},
                )
                if joined.matched_count:
                    return True
                continue
            if not self._is_orphan(holder, now):
                return False
            self._delete_unchanged(holder)
        return False

    def _held_by_other(self, user_id: str, key: str, now: datetime) -> bool:
        holder = self.claims.find_one({"_id": key})
        return (
            holder is not None and holder["userId"] != user_id and not self._is_orphan(holder, now)
        )

    def _is_orphan(self, claim: dict[str, Any], now: datetime) -> bool:
        """Nobody can rely on it: no live operation holds it, it has not changed for the
        stale age (a create in flight holds its claims by their age), and its user does not
        list it."""
        if live_operations(claim, now) or now - claim_changed_at(claim, now) <= STALE_CLAIM_AGE:
            return False
        return claim["_id"] not in self.stored_keys(claim["userId"])

    def _delete_unchanged(self, claim: dict[str, Any]) -> None:
        self.claims.delete_one(
            {"_id": claim["_id"], "userId": claim["userId"], **unchanged_filter(claim)}
        )

    def finish(self, user_id: str, keys: Collection[str], op: Operation) -> None:
        """op's write is committed (or abandoned): it no longer holds these claims."""
        self.settle(user_id, op, added=keys)

    def abandon(self, user_id: str, keys: Collection[str], op: Operation) -> None:
        """op will not commit: drop its hold, and the claims nobody else needs."""
        if keys:
            self.finish(user_id, keys, op)

    def release_unlisted(self, user_id: str, keys: Collection[str]) -> None:
        """Delete user_id's claims on keys that no operation holds and that its stored
        document does not list."""
        self.settle(user_id, None, dropped=keys)

    def settle(
        self,
        user_id: str,
        op: Operation | None,
        added: Collection[str] = (),
        dropped: Collection[str] = (),
    ) -> None:
        """After op's write: let go of op's hold on `added`, then delete what of `added` and
        `dropped` is now idle and unlisted, reading the user's document once. Whoever leaves
        a claim idle checks it is still listed: a later update may have dropped the email
        while op still held it (and so could not release it). The document is read after
        the claims, and each delete requires the claim's `rev` as read, so a concurrent
        re-claim always survives."""
        now = utcnow()
        idle = self._let_go(user_id, added, op, now) if op is not None else []
        if dropped:  # most updates change no email: no read at all
            found = self.claims.find({"_id": {"$in": sorted(dropped)}, "userId": user_id})
            idle += [claim for claim in found if not live_operations(claim, now)]
        if idle:
            self._delete_unlisted(user_id, idle)

    def _let_go(
        self, user_id: str, keys: Collection[str], op: Operation, now: datetime
    ) -> list[dict[str, Any]]:
        """Pull op's id from each claim; return the claims of user_id no one holds now."""
        idle = []
        for key in sorted(keys):
            # Filtered on `_id` alone (nx-27017 scans the collection for any other filter);
            # pulling an id the claim does not hold changes nothing, and a pull needs no new
            # `rev`: a deleter that saw no operation cannot see this one leave.
            claim = self.claims.find_one_and_update(
                {"_id": key}, {"$pull": {"ops": op.id}}, return_document=ReturnDocument.AFTER
            )
            mine = claim is not None and claim["userId"] == user_id
            if mine and not live_operations(claim, now):
                idle.append(claim)
        return idle

    def _delete_unlisted(self, user_id: str, idle: list[dict[str, Any]]) -> None:
        listed = self.stored_keys(user_id)
        for claim in idle:
            if claim["_id"] not in listed:
                self._delete_unchanged(claim)


def migrate_legacy_claims(database: Any) -> int:
    """Claims written before operation ids (`{_id: lower-cased email, userId, claimedAt}`)
    move to their normalised key and the current shape; returns how many changed."""
    claims, moved = database[EMAIL_CLAIMS], 0
    for claim in list(claims.find({"rev": {"$exists": False}})):
        key, changed_at = email_key(claim["_id"]), claim.get("claimedAt") or utcnow()
        if key != claim["_id"]:
            # Already claimed under the new key: the audit reports it if that is a conflict.
            with contextlib.suppress(DuplicateKeyError):
                claims.insert_one(new_claim(key, claim["userId"], [], changed_at))
            claims.delete_one({"_id": claim["_id"], "rev": {"$exists": False}})
        else:
            claims.update_one(
                {"_id": key, "rev": {"$exists": False}},
                {"$set": {"ops": [], "rev": new_rev(), "changedAt": changed_at}},
            )
        moved += 1
    return moved
