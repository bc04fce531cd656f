"""The invariants `micro-db check` audits (and `--repair` restores where that is safe)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from schemas.emails import email_key
from workers.orders.repository import DETAILS_OVERRIDE, ORDERS
from workers.runtime.documents import utcnow
from workers.users.email_claims import (
    EMAIL_CLAIMS,
    STALE_CLAIM_AGE,
    USERS,
    claim_changed_at,
    live_operations,
    new_claim,
    new_rev,
    unchanged_filter,
)


@dataclass
class Violation:
    kind: str
    detail: str
    repaired: bool = False


@dataclass
class Audit:
    users: int = 0
    claims: int = 0
    orders: int = 0
    scoped: bool = False
    violations: list[Violation] = field(default_factory=list)

    @property
    def open(self) -> list[Violation]:
        return [v for v in self.violations if not v.repaired]

    def add(self, kind: str, detail: str, repaired: bool = False) -> None:
        self.violations.append(Violation(kind, detail, repaired))


def audit(
    db: Database,
    repair: bool = False,
    now: datetime | None = None,
    user_ids: Collection[str] | None = None,
) -> Audit:
    """The whole database, or only what concerns `user_ids` (their emails' claims and their
    orders: how a test audits its own users on a database other tests share)."""
    now = now or utcnow()
    result = Audit(scoped=user_ids is not None)
    scope: dict[str, Any] = {} if user_ids is None else {"userId": {"$in": sorted(user_ids)}}
    users = {u["userId"]: u for u in db[USERS].find(scope, {"_id": False})}
    keys = sorted({email_key(e) for u in users.values() for e in u.get("emails", [])})
    claim_scope = scope and {"$or": [scope, {"_id": {"$in": keys}}]}
    claims = {c["_id"]: c for c in db[EMAIL_CLAIMS].find(claim_scope)}
    result.users, result.claims = len(users), len(claims)
    owners = _check_emails(db, users, claims, result, repair)
    _check_claims(db, owners, claims, result, repair, now)
    _check_orders(db, users, scope, result, repair, now)
    return result


def _check_emails(
    db: Database, users: dict, claims: dict, result: Audit, repair: bool
) -> dict[str, set[str]]:
    """Every stored email has one claim, held by its owner; no email is on two users."""
    owners: dict[str, set[str]] = defaultdict(set)
    for user_id, user in users.items():
        for email in user.get("emails", []):
            owners[email_key(email)].add(user_id)
    for key, holders in sorted(owners.items()):
        if len(holders) > 1:
            result.add("email-on-two-users", f"{key} is on users {sorted(holders)}")
            continue
        (owner,) = holders
        claim = claims.get(key)
        if claim is None:
            result.add(
                "missing-claim",
                f"{key} of user {owner} has no claim",
                repair and _claim(db, key, owner),
            )
        elif claim["userId"] != owner:
            result.add(
                "claim-of-another-user", f"{key} of user {owner} is claimed by {claim['userId']}"
            )
    return owners


def _claim(db: Database, key: str, owner: str) -> bool:
    try:
        db[EMAIL_CLAIMS].insert_one(new_claim(key, owner, [], utcnow()))
        return True
    except DuplicateKeyError:
        return False


def _check_claims(
    db: Database, owners: dict, claims: dict, result: Audit, repair: bool, now: datetime
) -> None:
    """No claim outlives its purpose: unlisted claims and dead operations older than the
    stale age (younger ones may belong to an operation still in flight). `owners` covers
    the users in scope; a claim of anyone else is not judged here."""
    in_scope = {user for holders in owners.values() for user in holders}
    for key, claim in sorted(claims.items()):
        if result.scoped and claim["userId"] not in in_scope:
            continue
        live = live_operations(claim, now)
        changed = claim_changed_at(claim, now)
        unchanged = {"_id": key, **unchanged_filter(claim)}
        if claim["userId"] not in owners.get(key, set()):
            if not live and now - changed > STALE_CLAIM_AGE:
                fixed = repair and db[EMAIL_CLAIMS].delete_one(unchanged).deleted_count == 1
                detail = f"{key} claimed by {claim['userId']}, who does not list it"
                result.add("orphan-claim", detail, fixed)
        elif len(live) < len(claim.get("ops", [])):
            pulled = {"$set": {"ops": live, "rev": new_rev()}}
            fixed = repair and db[EMAIL_CLAIMS].update_one(unchanged, pulled).modified_count == 1
            detail = f"{key} still names operations older than {STALE_CLAIM_AGE}"
            result.add("dead-operation", detail, fixed)


def _check_orders(
    db: Database, users: dict, scope: dict, result: Audit, repair: bool, now: datetime
) -> None:
    """Once no event is pending, every order of a user holds that user's latest contact
    (or one set by hand since that version)."""
    for order in db[ORDERS].find(scope or {"userId": {"$exists": True}}, {"_id": False}):
        result.orders += 1
        user = users.get(order["userId"])
        if user is None:
            result.add(
                "order-of-missing-user", f"order {order['orderId']} names user {order['userId']}"
            )
            continue
        if user.get("eventPendingSince") is not None:
            continue  # the relay will publish it; the orders are not stale yet
        contact = {"userEmails": user["emails"], "deliveryAddress": user["deliveryAddress"]}
        version = user.get("version", 0)
        held = {name: order.get(name) for name in contact}
        by_hand = order.get(DETAILS_OVERRIDE) is not None and order.get(
            DETAILS_OVERRIDE
        ) == order.get("userVersion")
        if order.get("userVersion") == version and (held == contact or by_hand):
            continue
        fixed = repair and _bring_up_to_date(db, order, contact, version, now)
        result.add(
            "stale-order",
            f"order {order['orderId']} holds v{order.get('userVersion')} of user "
            f"{order['userId']} (now v{version})",
            fixed,
        )


def _bring_up_to_date(
    db: Database, order: dict, contact: dict, version: int, now: datetime
) -> bool:
    # Guarded like the event handler, so a newer event that lands meanwhile still wins.
    guard: dict[str, Any] = {"$lte": version} if "userVersion" in order else {"$exists": False}
    changed = db[ORDERS].update_one(
        {"orderId": order["orderId"], "userVersion": guard},
        {
            "$set": {**contact, "userVersion": version, "updatedAt": now},
            "$unset": {DETAILS_OVERRIDE: ""},
        },
    )
    return changed.modified_count == 1


def report_lines(result: Audit) -> list[str]:
    lines = [
        f"{v.kind}: {v.detail}{' (repaired)' if v.repaired else ''}" for v in result.violations
    ]
    lines.append(
        f"checked {result.users} users, {result.claims} email claims, {result.orders} orders "
        f"with a user: {len(result.open)} violations"
        + (f" ({len(result.violations) - len(result.open)} repaired)" if result.violations else "")
    )
    return lines
