"""`micro-db check`: each invariant is reported when broken and, where safe, repaired."""

from __future__ import annotations

import pytest

from tests.support.data import address
from workers.db import invariants
from workers.db.commands import run_check
from workers.orders import domain as orders_domain
from workers.runtime.documents import utcnow
from workers.users import domain as users_domain
from workers.users.email_claims import STALE_CLAIM_AGE

ADDRESS = address()
ITEMS = [{"itemId": "sku-1", "quantity": 1, "price": 1.0}]


@pytest.fixture
def db(mock_database, users_repository, orders_repository):
    ann = users_domain.create_user(
        users_repository,
        {"emails": ["ann@example.com"], "deliveryAddress": ADDRESS},
        users_domain.V1,
    )
    order = {"userId": ann["userId"], "items": ITEMS, "userEmails": ann["emails"],
             "deliveryAddress": ADDRESS, "orderStatus": "shipping"}  # fmt: skip
    orders_domain.create_order(
        orders_repository, order, lambda _: users_repository.find(ann["userId"])
    )
    mock_database.ann = ann
    return mock_database


def kinds(db, repair=False):
    return sorted(v.kind for v in invariants.audit(db, repair=repair).open)


def test_a_consistent_database_is_clean_and_exits_0(db, capsys):
    assert kinds(db) == []
    assert run_check(db, repair=False, as_json=False) == 0
    assert "0 violations" in capsys.readouterr().out


def test_an_email_without_its_claim_is_reported_and_repaired(db):
    db.user_emails.delete_many({})
    assert kinds(db) == ["missing-claim"]
    assert run_check(db, repair=False, as_json=True) == 1
    assert kinds(db, repair=True) == []
    assert kinds(db) == []


def test_an_email_on_two_users_is_reported_not_repaired(db):
    twin = {
        **db.users.find_one({}, {"_id": False}),
        "userId": "22222222-2222-4222-8222-222222222222",
    }
    twin["emails"] = ["ANN@example.com"]
    db.users.insert_one(twin)
    assert "email-on-two-users" in kinds(db, repair=True)


def test_orphan_claims_count_only_once_they_are_older_than_the_stale_age(db):
    db.user_emails.insert_one({"_id": "gone@example.com", "userId": db.ann["userId"], "ops": [],
                               "rev": "r", "changedAt": utcnow()})  # fmt: skip
    assert kinds(db) == []  # may belong to an operation that is about to commit
    db.user_emails.update_one(
        {"_id": "gone@example.com"}, {"$set": {"changedAt": utcnow() - STALE_CLAIM_AGE * 2}}
    )
    assert kinds(db) == ["orphan-claim"]
    assert (
        kinds(db, repair=True) == []
        and db.user_emails.find_one({"_id": "gone@example.com"}) is None
    )


def test_a_stale_order_is_reported_unless_an_event_is_pending_and_repaired(db):
    db.users.update_one(
        {"userId": db.ann["userId"]},
        {"$set": {"deliveryAddress": {**ADDRESS, "city": "Elsewhere"}}, "$inc": {"version": 1}},
    )
    assert kinds(db) == ["stale-order"]
    db.users.update_one({"userId": db.ann["userId"]}, {"$set": {"eventPendingSince": utcnow()}})
    assert kinds(db) == []  # the relay will deliver it
    db.users.update_one({"userId": db.ann["userId"]}, {"$unset": {"eventPendingSince": ""}})
    assert kinds(db, repair=True) == []
    assert db.orders.find_one()["deliveryAddress"]["city"] == "Elsewhere"


def test_a_same_version_order_with_another_contact_is_stale_unless_set_by_hand(db):
    db.orders.update_one({}, {"$set": {"userEmails": ["forged@example.com"]}})
    assert kinds(db) == ["stale-order"]
    db.orders.update_one({}, {"$set": {"detailsVersion": 1}})
    assert kinds(db) == []


def test_an_order_pinned_by_a_forged_version_is_reported(db):
    db.orders.update_one({}, {"$set": {"userVersion": 2**40}})
    assert kinds(db, repair=True) == ["stale-order"]


def test_dead_operations_are_pulled_from_claims(db):
    dead = f"{0:013d}-dead"
    db.user_emails.update_one({}, {"$set": {"ops": [dead]}})
    assert kinds(db) == ["dead-operation"]
    assert kinds(db, repair=True) == []
    assert db.user_emails.find_one()["ops"] == []
