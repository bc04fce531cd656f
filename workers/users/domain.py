"""User rules shared by both generations; v2 differs only in owning the timestamps."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from marshmallow import Schema

from common.tracing import resumed
from schemas.emails import email_key
from schemas.users import UserContactUpdateSchema, UserCreateV1Schema, UserCreateV2Schema
from workers.exceptions import EmailTaken, StorageUnavailable, UpdateConflict, UserNotFound
from workers.runtime import metrics
from workers.runtime.after_reply import AfterReplyFn, run_now
from workers.runtime.documents import (
    checked_id,
    load_payload,
    public_user,
    to_iso,
    to_storage_date,
    utcnow,
)
from workers.runtime.identity import created_by, updated_by
from workers.users.email_claims import Operation
from workers.users.repository import EVENT_TRACEPARENT, UsersRepository

log = logging.getLogger(__name__)

USER_UPDATED = "user_updated"
# Attempts at the version compare-and-set before giving up on a hot user.
MAX_UPDATE_ATTEMPTS = 50

Dispatch = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Generation:
    name: str
    create_schema: Schema
    service_owns_timestamps: bool


# Schema instances are built once: building one (nested schemas included) costs several
# times the validation itself, and load() keeps no state on the instance.
V1 = Generation("v1", UserCreateV1Schema(), service_owns_timestamps=False)
V2 = Generation("v2", UserCreateV2Schema(), service_owns_timestamps=True)
CONTACT_UPDATE = UserContactUpdateSchema()


def create_user(
    repo: UsersRepository, payload: Any, generation: Generation, caller: str | None = None
) -> dict[str, Any]:
    data = load_payload(generation.create_schema, payload)
    now = utcnow()
    if generation.service_owns_timestamps:
        data["createdAt"] = data["updatedAt"] = now  # client values are ignored
    else:
        for name in ("createdAt", "updatedAt"):
            if name in data:
                data[name] = to_storage_date(data[name])
    user = {"userId": str(uuid.uuid4()), "version": 1, **data, **created_by(caller)}
    claims, op = repo.email_claims, Operation.start(now)
    conflicts = claims.claim(user["userId"], user["emails"], op, now, hold=False)
    if conflicts:
        metrics.email_claim_conflict()
        raise EmailTaken(conflicts)
    keys = _keys(user["emails"])
    if op.expired(utcnow()):
        claims.abandon(user["userId"], keys, op)
        raise StorageUnavailable("The create took too long to commit safely; retry it.")
    try:
        repo.insert(user)
    except StorageUnavailable:
        # The write may still land: the claims stay, protected by their age for a while.
        raise
    except Exception:
        claims.abandon(user["userId"], keys, op)
        raise
    return public_user(user)


def get_user(repo: UsersRepository, user_id: Any) -> dict[str, Any]:
    user = repo.find(checked_id(user_id, UserNotFound))
    if user is None:
        raise UserNotFound(str(user_id))
    return public_user(user)


def user_updated_event(user: dict[str, Any], updated_at: Any) -> dict[str, Any]:
    return {
        "userId": user["userId"],
        "userEmails": user["emails"],
        "deliveryAddress": user["deliveryAddress"],
        "version": user["version"],
        "updatedAt": to_iso(updated_at),
    }


def update_contact(
    repo: UsersRepository,
    user_id: str,
    changes: Any,
    generation: Generation,
    dispatch: Dispatch,
    caller: str | None = None,
    after_reply: AfterReplyFn = run_now,
) -> list[dict[str, Any]]:
    """Change emails and/or address, then publish `user_updated` through `after_reply` (in a
    worker: once the reply is sent). The pending flag is committed with the change, so if the
    publish never confirms the outbox relay re-sends it (docs/reliability.md)."""
    data = load_payload(CONTACT_UPDATE, changes)
    user_id = checked_id(user_id, UserNotFound)
    claims = repo.email_claims
    for _ in range(MAX_UPDATE_ATTEMPTS):
        before = repo.find(user_id)
        if before is None:
            raise UserNotFound(user_id)
        now = utcnow()
        op = Operation.start(now)
        held = _keys(before.get("emails", []))
        wanted = data.get("emails", before.get("emails", []))
        added = [email for email in wanted if email_key(email) not in held]
        added_keys = _keys(added)
        conflicts = claims.claim(user_id, added, op, now)
        if conflicts:
            metrics.email_claim_conflict()
            raise EmailTaken(conflicts)
        fields = {**data, **updated_by(caller)}
        if generation.service_owns_timestamps:
            fields["updatedAt"] = now
        after = None if op.expired(utcnow()) else repo.apply_contact_change(before, fields, now)
        if after is None:
            claims.abandon(user_id, added_keys, op)
            continue
        claims.settle(user_id, op, added=added_keys, dropped=held - _keys(after["emails"]))
        after_reply(publish_user_updated, repo, after, now, dispatch)
        return [public_user(before), public_user(after)]
    raise UpdateConflict(user_id)


def publish_user_updated(
    repo: UsersRepository, user: dict[str, Any], updated_at: Any, dispatch: Dispatch
) -> bool:
    if not _dispatch_user_updated(user, updated_at, dispatch):
        return False
    repo.mark_event_published(user)
    return True


def _dispatch_user_updated(user: dict[str, Any], updated_at: Any, dispatch: Dispatch) -> bool:
    try:
        dispatch(USER_UPDATED, user_updated_event(user, updated_at))
    except Exception:
        # The change is committed and flagged pending; the relay timer will publish it.
        log.warning(
            "user_updated for %s v%s not published; left for the relay",
            user["userId"],
            user["version"],
            exc_info=True,
        )
        return False
    return True


def relay_pending_events(
    repo: UsersRepository, dispatch: Dispatch, older_than_seconds: float
) -> int:
    """Publish events whose update committed but whose publish never confirmed."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    pending = repo.pending_events(cutoff)
    published = []
    for user in pending:
        # Published as part of the update's trace, so the orders' handling joins it.
        with resumed(user.get(EVENT_TRACEPARENT)):
            if _dispatch_user_updated(user, user["eventPendingSince"], dispatch):
                published.append(user)
    # One write for the batch: per-event clears would each wait FlagClears' window.
    repo.mark_events_published(published)
    sent = len(published)
    metrics.outbox_backlog(len(pending) - sent)  # no extra query: nx scans for ranges
    if sent:
        log.info("relayed %d pending user_updated events", sent)
    return sent


def _keys(emails: list[str]) -> set[str]:
    return {email_key(email) for email in emails}
