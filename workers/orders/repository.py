"""pymongo access for orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from workers.runtime.mongo import MongoRepository, without_object_id

ORDERS = "orders"
PROJECTION = {"_id": False}
# The userVersion at which the order's contact was last set by hand (update_details).
DETAILS_OVERRIDE = "detailsVersion"


class OrdersRepository(MongoRepository):
    @property
    def orders(self) -> Any:
        return self.database[ORDERS]

    def insert(self, document: dict[str, Any]) -> None:
        self.orders.insert_one(dict(document))

    def find(self, order_id: str) -> dict[str, Any] | None:
        if not isinstance(order_id, str):
            return None
        return self.orders.find_one({"orderId": order_id}, PROJECTION)

    def list_by_status(
        self, status: str, limit: int, offset: int, user_id: str | None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"orderStatus": status}
        if user_id is not None:
            query["userId"] = user_id
        # createdAt then orderId: a stable order, so pages neither repeat nor skip.
        cursor = (
            self.orders.find(query, PROJECTION)
            .sort([("createdAt", 1), ("orderId", 1)])
            .skip(offset)
            .limit(limit)
        )
        return list(cursor)

    def delete(self, order_id: str) -> None:
        self.orders.delete_one({"orderId": order_id})

    def update_fields(
        self, order_id: str, fields: dict[str, Any], user_version: int | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Set fields atomically and return (before, after), or None if there is no order
        (or, given `user_version`, none still holding that version of its user)."""
        guard = {} if user_version is None else {"userVersion": user_version}
        before = self.orders.find_one_and_update(
            {"orderId": order_id, **guard},
            {"$set": fields},
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            return None
        before = without_object_id(before)
        return before, {**before, **fields}

    def apply_user_contact(
        self,
        user_id: str,
        version: int,
        user_emails: list[str],
        delivery_address: dict[str, Any],
        now: datetime,
    ) -> int:
        """Copy a user's contact onto their orders unless an equal or newer version is there.

        The orders to change are found by the indexed `userId` and then written by `_id`,
        with the version guard repeated in the write so a newer event that lands in
        between still wins. (One `update_many` on `userId` + `$or` is a full scan on the
        local wire server: 100 ms at 100 000 orders against 1 ms this way.)"""
        stale, unversioned = [], []
        for order in self.orders.find({"userId": user_id}, {"_id": True, "userVersion": True}):
            if "userVersion" not in order:
                unversioned.append(order["_id"])
            elif order["userVersion"] < version:
                stale.append(order["_id"])
        changes = {
            "$set": {
                "userEmails": user_emails,
                "deliveryAddress": delivery_address,
                "userVersion": version,
                "updatedAt": now,
            },
            "$unset": {DETAILS_OVERRIDE: ""},
        }
        modified = 0
        for ids, guard in ((stale, {"$lt": version}), (unversioned, {"$exists": False})):
            if ids:
                result = self.orders.update_many(
                    {"_id": {"$in": ids}, "userVersion": guard}, changes
                )
                modified += result.modified_count
        return modified
