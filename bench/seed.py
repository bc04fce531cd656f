"""Bulk seeding of the bench database with pymongo insert_many (bypasses the services)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import MongoClient
from tqdm import tqdm

from schemas.fields import ORDER_STATUSES

BATCH = 1000
ADDRESS = {
    "street": "1 Seed St",
    "city": "Springfield",
    "state": "CA",
    "postalCode": "90210",
    "country": "US",
}


def order_document(n: int, user_id: str, status: str, created: datetime) -> dict[str, Any]:
    """An order shaped exactly as orders_domain.create_order stores it."""
    return {
        "orderId": str(uuid.uuid4()),
        "userId": user_id,
        "items": [
            {"itemId": f"sku-{n % 97}", "quantity": 1 + n % 3, "price": 9.5, "name": "Seed item"}
        ],
        "userEmails": [f"owner-{user_id[:8]}@bench.example"],
        "deliveryAddress": ADDRESS,
        "orderStatus": status,
        "userVersion": 0,
        "createdAt": created,
        "updatedAt": created,
    }


def seed_orders(mongo_uri: str, db_name: str, count: int, label: str = "seed orders") -> None:
    """Add `count` orders spread over the three statuses and 1 000 users (10..100 per user)."""
    if count <= 0:
        return
    users = [str(uuid.uuid4()) for _ in range(1000)]
    start = datetime.now(UTC) - timedelta(days=30)
    with (
        MongoClient(mongo_uri) as client,
        tqdm(total=count, desc=f"  {label}", unit="doc", ncols=90) as bar,
    ):
        orders = client[db_name].orders
        done = 0
        while done < count:
            size = min(BATCH, count - done)
            docs = [
                order_document(
                    done + i,
                    users[(done + i) % len(users)],
                    ORDER_STATUSES[(done + i) % len(ORDER_STATUSES)],
                    start + timedelta(seconds=done + i),
                )
                for i in range(size)
            ]
            orders.insert_many(docs, ordered=False)
            done += size
            bar.update(size)


def insert_orders_for(
    mongo_uri: str, db_name: str, user_id: str, count: int, version: int
) -> list[Any]:
    """`count` orders of one real user, holding `version` of its contact; returns their _ids
    (nx-27017 looks documents up by _id through its primary key, by other fields by scanning)."""
    now = datetime.now(UTC)
    docs = [
        order_document(i, user_id, ORDER_STATUSES[i % 3], now) | {"userVersion": version}
        for i in range(count)
    ]
    with MongoClient(mongo_uri) as client:
        return list(client[db_name].orders.insert_many(docs, ordered=False).inserted_ids)


def count_orders(mongo_uri: str, db_name: str) -> int:
    with MongoClient(mongo_uri) as client:
        return client[db_name].orders.estimated_document_count()
