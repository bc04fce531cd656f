"""User rules shared by both generations; v2 differs only in owning the timestamps."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from marshmallow import Schema

from schemas.users import UserContactUpdateSchema, UserCreateV1Schema, UserCreateV2Schema
from workers.documents import load_payload, public_user, to_iso, to_storage_date, utcnow
from workers.exceptions import EmailTaken, UpdateConflict, UserNotFound
from workers.users_repository import UsersRepository

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


def create_user(repo: UsersRepository, payload: Any, generation: Generation) -> dict[str, Any]:
    data = load_payload(generation.create_schema, payload)
    now = utcnow()
    if generation.service_owns_timestamps:
        data["createdAt"] = data["updatedAt"] = now  # client values are ignored
    else:
        for name in ("createdAt", "updatedAt"):
            if name in data:
                data[name] = to_storage_date(data[name])
    user = {"userId": str(uuid.uuid4()), "version": 1, **data}
    conflicts = repo.claim_emails(user["userId"], user["emails"], now)
    if conflicts:
        raise EmailTaken(conflicts)
    try:
        repo.insert(user)
    except Exception:
        repo.release_emails(user["userId"], user["emails"])
        raise
    return public_user(user)


def get_user(repo: UsersRepository, user_id: str) -> dict[str, Any]:
    user = repo.find(user_id)
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
) -> list[dict[str, Any]]:
    """Change emails and/or address, then publish `user_updated` (an outbox relay re-sends it
    if publishing fails, because the pending flag is written with the change)."""
    data = load_payload(CONTACT_UPDATE, changes)
    for _ in range(MAX_UPDATE_ATTEMPTS):
        before = repo.find(user_id)
        if before is None:
            raise UserNotFound(str(user_id))
        now = utcnow()
        added = _added_emails(before.get("emails", []), data.get("emails", []))
        conflicts = repo.claim_emails(user_id, added, now)
        if conflicts:
            raise EmailTaken(conflicts)
        fields = dict(data)
        if generation.service_owns_timestamps:
            fields["updatedAt"] = now
        after = repo.apply_contact_change(before, fields, now)
        if after is None:
            repo.release_emails(user_id, added)
            continue
        removed = _added_emails(after["emails"], before.get("emails", []))
        repo.release_emails(user_id, removed)
        publish_user_updated(repo, after, now, dispatch)
        return [public_user(before), public_user(after)]
    raise UpdateConflict(str(user_id))


def publish_user_updated(
    repo: UsersRepository, user: dict[str, Any], updated_at: Any, dispatch: Dispatch
) -> bool:
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
    repo.mark_event_published(user)
    return True


def relay_pending_events(
    repo: UsersRepository, dispatch: Dispatch, older_than_seconds: float
) -> int:
    """Publish events whose update committed but whose publish never confirmed."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    sent = 0
    for user in repo.pending_events(cutoff):
        if publish_user_updated(repo, user, user["eventPendingSince"], dispatch):
            sent += 1
    if sent:
        log.info("relayed %d pending user_updated events", sent)
    return sent


def _added_emails(current: list[str], wanted: list[str]) -> list[str]:
    have = {email.lower() for email in current}
    return [email for email in wanted if email.lower() not in have]
