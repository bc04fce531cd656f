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
from workers.documents import load_payload, public_order, utcnow
from workers.exceptions import OrderNotFound, UnknownUser, UserNotFound, ValidationFailed

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


def create_order(repo: Any, payload: Any, fetch_user: FetchUser) -> dict[str, Any]:
    data = load_payload(SCHEMAS[OrderCreateSchema], payload)
    order: dict[str, Any] = {"orderId": str(uuid.uuid4()), **data}
    if "userId" in data:
        try:
            user = fetch_user(data["userId"])
        except UserNotFound:
            raise UnknownUser(data["userId"]) from None
        # Events older than the user as we saw it must not overwrite this order.
        order["userVersion"] = user.get("version", 0)
    order["createdAt"] = order["updatedAt"] = utcnow()
    repo.insert(order)
    return public_order(order)


def get_order(repo: Any, order_id: str) -> dict[str, Any]:
    order = repo.find(order_id)
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


def _update(repo: Any, order_id: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    changed = repo.update_fields(order_id, {**fields, "updatedAt": utcnow()})
    if changed is None:
        raise OrderNotFound(str(order_id))
    before, after = changed
    return [public_order(before), public_order(after)]


def update_status(repo: Any, order_id: str, status: Any) -> list[dict[str, Any]]:
    data = load_payload(SCHEMAS[OrderStatusUpdateSchema], {"orderStatus": status})
    return _update(repo, order_id, data)


def update_details(repo: Any, order_id: str, changes: Any) -> list[dict[str, Any]]:
    data = load_payload(SCHEMAS[OrderDetailsUpdateSchema], changes)
    return _update(repo, order_id, data)


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
