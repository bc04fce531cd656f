"""`micro-db setup|seed|check`: collections, validators and indexes; demo data; the audit."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import uuid
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import CollectionInvalid, PyMongoError

from schemas.emails import email_key
from schemas.fields import ORDER_STATUSES
from schemas.mongo_validators import VALIDATORS
from workers.db import invariants
from workers.orders.repository import ORDERS
from workers.runtime.documents import utcnow
from workers.runtime.mongo import database_name, mongo_client
from workers.users.email_claims import migrate_legacy_claims, new_claim
from workers.users.repository import EMAIL_CLAIMS, USERS

# Each index: a field name or a list of fields (compound, ascending), and its options.
INDEXES: dict[str, list[tuple[str | list[str], dict[str, Any]]]] = {
    USERS: [
        ("userId", {"unique": True}),
        # Enforced by real MongoDB; the email claims collection guards servers that don't.
        ("emails", {"unique": True}),
        ("eventPendingSince", {"sparse": True}),
    ],
    ORDERS: [
        ("orderId", {"unique": True}),
        ("orderStatus", {}),
        ("userId", {}),
        # First page of GET /orders/?status=: equality then the sort keys, so the page is
        # read in index order instead of sorting every order of that status.
        (["orderStatus", "createdAt", "orderId"], {}),
    ],
    EMAIL_CLAIMS: [("userId", {})],
}
SEED_USERS = 5
SEED_ORDERS = 15


def index_keys(keys: str | list[str]) -> list[tuple[str, int]]:
    return [(field, ASCENDING) for field in ([keys] if isinstance(keys, str) else keys)]


def setup_database(db: Database, reset: bool = False) -> list[str]:
    """Idempotent: creates what is missing, refreshes validators with collMod."""
    actions = []
    if reset:
        for name in INDEXES:
            db.drop_collection(name)
        actions.append("dropped collections (--reset)")
    existing = set(db.list_collection_names())
    for name in INDEXES:
        validator = VALIDATORS[name]() if name in VALIDATORS else None
        options = {"validator": validator, "validationLevel": "strict"} if validator else {}
        if name not in existing:
            try:
                db.create_collection(name, **options)
                actions.append(f"created {name}")
            except CollectionInvalid:  # created concurrently by another setup
                existing.add(name)
        if name in existing and validator:
            db.command("collMod", name, **options)
            actions.append(f"updated validator of {name}")
        for keys, index_options in INDEXES[name]:
            db[name].create_index(index_keys(keys), **index_options)
    actions.append("indexes ensured")
    migrated = migrate_legacy_claims(db)
    if migrated:
        actions.append(f"migrated {migrated} email claims to the normalised key")
    return actions


def _seeded_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def seed_documents(random_seed: int) -> tuple[list[dict], list[dict]]:
    """5 users and 15 orders (1-3 items each), the same for the same random seed."""
    rng = random.Random(random_seed)
    now = utcnow()
    users = []
    for n in range(1, SEED_USERS + 1):
        users.append(
            {
                "userId": _seeded_uuid(rng),
                "emails": [f"user{n}@example.com"],
                "deliveryAddress": {
                    "street": f"{rng.randint(1, 999)} Main St",
                    "city": rng.choice(["Springfield", "Riverton", "Lakeside"]),
                    "state": rng.choice(["CA", "NY", "TX"]),
                    "postalCode": f"{rng.randint(10000, 99999)}",
                    "country": "US",
                },
                "firstName": f"User{n}",
                "lastName": "Seed",
                "phoneNumber": f"555{rng.randint(1000000, 9999999)}",
                "createdAt": now,
                "updatedAt": now,
                "version": 1,
            }
        )
    orders = []
    for n in range(1, SEED_ORDERS + 1):
        owner = users[(n - 1) % SEED_USERS]
        items = [
            {
                "itemId": f"item-{rng.randint(1, 50)}",
                "quantity": rng.randint(1, 5),
                "price": round(rng.uniform(1, 100), 2),
                "name": f"Item {k + 1}",
            }
            for k in range(rng.randint(1, 3))
        ]
        created = now + timedelta(milliseconds=n)
        orders.append(
            {
                "orderId": _seeded_uuid(rng),
                "userId": owner["userId"],
                "items": items,
                "userEmails": owner["emails"],
                "deliveryAddress": owner["deliveryAddress"],
                "orderStatus": ORDER_STATUSES[n % len(ORDER_STATUSES)],
                "createdAt": created,
                "updatedAt": created,
                "userVersion": owner["version"],
            }
        )
    return users, orders


def seed_database(db: Database, random_seed: int, out: Any = None) -> dict[str, str]:
    """Upserts the seed documents (re-running is harmless); returns label -> id."""
    out = out or sys.stdout
    users, orders = seed_documents(random_seed)
    now = utcnow()
    labels = {}
    total = len(users) + len(orders)
    for done, user in enumerate(users, start=1):
        for email in user["emails"]:
            key = email_key(email)
            claim = new_claim(key, user["userId"], [], now)
            db[EMAIL_CLAIMS].replace_one({"_id": key}, claim, upsert=True)
        db[USERS].replace_one({"emails": {"$in": user["emails"]}}, user, upsert=True)
        labels[f"u{done}"] = user["userId"]
        _progress(out, done, total)
    for n, order in enumerate(orders, start=1):
        db[ORDERS].replace_one({"orderId": order["orderId"]}, order, upsert=True)
        labels[f"o{n}"] = order["orderId"]
        _progress(out, len(users) + n, total)
    out.write("\n")
    return labels


def _progress(out: Any, done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    out.write(f"\rseeding [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    out.flush()


def run_check(db: Database, repair: bool, as_json: bool) -> int:
    result = invariants.audit(db, repair=repair)
    if as_json:
        print(json.dumps(dataclasses.asdict(result) | {"open": len(result.open)}, indent=2))
    else:
        print("\n".join(invariants.report_lines(result)))
    return 1 if result.open else 0


def _config_from_env() -> dict[str, str]:
    return {
        key: os.environ[key]
        for key in ("MONGO_URI", "MONGO_DB", "MONGO_TIMEOUT_MS")
        if os.environ.get(key)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="micro-db", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup", help="create collections, validators and indexes")
    setup.add_argument("--reset", action="store_true", help="DROP all data first")
    seed = commands.add_parser("seed", help="load 5 users and 15 orders")
    seed.add_argument("--random-seed", type=int, default=42)
    check = commands.add_parser(
        "check", help="audit the invariants (exit 1 on any violation, 0 when clean)"
    )
    check.add_argument("--repair", action="store_true", help="fix what can safely be fixed")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    config = _config_from_env()
    client: MongoClient = mongo_client(config)
    db = client[database_name(config)]
    try:
        if args.command == "setup":
            for action in setup_database(db, reset=args.reset):
                print(f"{db.name}: {action}")
        elif args.command == "check":
            return run_check(db, repair=args.repair, as_json=args.json)
        else:
            labels = seed_database(db, args.random_seed)
            for label, identifier in labels.items():
                print(f"{label}\t{identifier}")
    except PyMongoError as error:
        print(
            f"micro-db: cannot reach MongoDB at {config.get('MONGO_URI', 'default')}: {error}",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
