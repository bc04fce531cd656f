"""Order rules: creation (with the user check), status and details changes, user propagation."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from schemas.orders import (
    OrderCreateSchema,
    OrderDetailsUpdateSchema,
    OrderListQuerySchema,
    OrderStatusUpdateSchema,
)
from schemas.users import UserEventSchema
from workers.exceptions import (
    OrderNotFound,
    UnknownUser,
    UpdateConflict,
    UserNotFound,
    ValidationFailed,
)
from workers.orders.repository import DETAILS_OVERRIDE
from workers.runtime.documents import checked_id, load_payload, public_order, utcnow
from workers.runtime.identity import created_by, updated_by

FetchUser = Callable[[str], dict[str, Any]]

# Built once (see users_domain): load() keeps no state on the instance.
SCHEMAS = {
    schema: schema()
    for schema in (
        OrderCreateSchema,
        OrderListQuerySchema,
        OrderStatusUpdateSchema,
        OrderDetailsUpdateSchema,
        UserEventSchema,
    )
}


def create_order(
    repo: Any, payload: Any, fetch_user: FetchUser, caller: str | None = None
) -> dict[str, Any]:
    """An order that names a user carries that user's current contact (what the client
    sent is validated, then replaced), stamped with the user version it came from."""
    data = load_payload(SCHEMAS[OrderCreateSchema], payload)
    order: dict[str, Any] = {"orderId": str(uuid.uuid4()), **data, **created_by(caller)}
    if "userId" in data:
        try:
            user = fetch_user(data["userId"])
        except UserNotFound:
            raise UnknownUser(data["userId"]) from None
        order.update(_contact_of(user))
    order["createdAt"] = order["updatedAt"] = utcnow()
    repo.insert(order)
    if "userId" in data:
        try:
            order = _catch_up(repo, order, fetch_user)
        except Exception:
            # Not knowing the user's latest contact, the order could stay stale for ever:
            # it is withdrawn and the caller's error says to retry (nothing half-made stays).
            repo.delete(order["orderId"])
            raise
    return public_order(order)


def _contact_of(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "userEmails": user["emails"],
        "deliveryAddress": user["deliveryAddress"],
        "userVersion": user.get("version", 0),
    }


def _catch_up(repo: Any, order: dict[str, Any], fetch_user: FetchUser) -> dict[str, Any]:
    """Re-read the user once the order is stored: an update committed between the first
    read and the insert had its event applied before this order existed. Any later update
    commits after this read, so its event finds the order: one re-read is enough."""
    latest = _contact_of(fetch_user(order["userId"]))
    if latest["userVersion"] <= order["userVersion"]:
        return order
    repo.apply_user_contact(
        order["userId"],
        latest["userVersion"],
        latest["userEmails"],
        latest["deliveryAddress"],
        utcnow(),
    )
    return repo.find(order["orderId"]) or order


def get_order(repo: Any, order_id: Any) -> dict[str, Any]:
    order = repo.find(checked_id(order_id, OrderNotFound))
    if order is None:
        raise OrderNotFound(str(order_id))
    return public_order(order)


def list_orders(
    repo: Any, status: Any, limit: Any = 100, offset: Any = 0, user_id: Any = None
) -> list[dict[str, Any]]:
    query = {"status": status, "limit": limit, "offset": offset}
    if user_id is not None:
        query["userId"] = user_id
    params = load_payload(SCHEMAS[OrderListQuerySchema], query)
    orders = repo.list_by_status(
        params["status"], params["limit"], params["offset"], params.get("userId")
    )
    return [public_order(order) for order in orders]


# A user event landing between the read and the write of a details change retries it.
MAX_DETAILS_ATTEMPTS = 10


def _update(repo: Any, order_id: Any, fields: dict[str, Any]) -> tuple[dict, dict]:
    order_id = checked_id(order_id, OrderNotFound)
    changed = repo.update_fields(order_id, {**fields, "updatedAt": utcnow()})
    if changed is None:
        raise OrderNotFound(order_id)
    return changed


def update_status(
    repo: Any, order_id: Any, status: Any, caller: str | None = None
) -> list[dict[str, Any]]:
    data = load_payload(SCHEMAS[OrderStatusUpdateSchema], {"orderStatus": status})
    before, after = _update(repo, order_id, {**data, **updated_by(caller)})
    return [public_order(before), public_order(after)]


def update_details(
    repo: Any, order_id: Any, changes: Any, caller: str | None = None
) -> list[dict[str, Any]]:
    """A hand-set contact holds until the user's next update, which overwrites it. The
    user version it was set at is written with it (compare-and-set on `userVersion`), so
    neither an event nor `micro-db check --repair` can mistake it for a stale one."""
    data = load_payload(SCHEMAS[OrderDetailsUpdateSchema], changes)
    order_id = checked_id(order_id, OrderNotFound)
    for _ in range(MAX_DETAILS_ATTEMPTS):
        current = repo.find(order_id)
        if current is None:
            raise OrderNotFound(order_id)
        fields = {**data, "updatedAt": utcnow(), **updated_by(caller)}
        if "userVersion" in current:
            fields[DETAILS_OVERRIDE] = current["userVersion"]
        changed = repo.update_fields(order_id, fields, user_version=current.get("userVersion"))
        if changed is not None:
            before, after = changed
            return [public_order(before), public_order(after)]
    raise UpdateConflict(order_id)


class MalformedEvent(ValidationFailed):
    """A user_updated body that can never be applied (goes to the dead-letter queue)."""


def apply_user_updated(repo: Any, event: Any) -> int:
    try:
        data = load_payload(SCHEMAS[UserEventSchema], event)
    except ValidationFailed as error:
        raise MalformedEvent(error.errors, "Malformed user_updated event.") from None
    return repo.apply_user_contact(
        data["userId"], data["version"], data["userEmails"], data["deliveryAddress"], utcnow()
    )
