"""The email claim protocol, step by step: each test replays one interleaving that broke
an earlier design and checks the audit afterwards (mongomock; the random interleavings
run on the real wire server in tests/integration/test_email_ownership.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from schemas.emails import email_key
from tests.support.data import address
from workers.db import invariants
from workers.runtime.documents import utcnow
from workers.users.email_claims import STALE_CLAIM_AGE, EmailClaims, Operation

ADDRESS = address()
X, Y = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def db(mock_database):
    return mock_database


@pytest.fixture
def claims(db):
    return EmailClaims(db)


def store_user(db, user_id, *emails, version=1):
    db.users.replace_one(
        {"userId": user_id},
        {
            "userId": user_id,
            "emails": list(emails),
            "deliveryAddress": ADDRESS,
            "version": version,
        },
        upsert=True,
    )


def assert_clean(db):
    result = invariants.audit(db)
    assert not result.open, invariants.report_lines(result)


def test_an_abandoning_operation_keeps_a_claim_another_operation_of_the_user_holds(db, claims):
    """Issue 11 item 1: A and B both add b to X; A loses its compare-and-set to an unrelated
    update and gives up while B, still in flight, later commits b."""
    store_user(db, X, "a@example.com")
    claims.claim(X, ["a@example.com"], created := Operation.start(), utcnow())
    claims.finish(X, [email_key("a@example.com")], created)
    a, b = Operation.start(), Operation.start()
    assert claims.claim(X, ["b@example.com"], a, utcnow()) == []
    assert claims.claim(X, ["b@example.com"], b, utcnow()) == []
    claims.abandon(X, [email_key("b@example.com")], a)
    store_user(db, X, "b@example.com", version=2)  # B commits
    claims.finish(X, [email_key("b@example.com")], b)
    claims.release_unlisted(X, [email_key("a@example.com")])
    assert claims.claim(Y, ["b@example.com"], Operation.start(), utcnow()) == ["b@example.com"]
    assert_clean(db)


class ReclaimDuringRelease(EmailClaims):
    """Runs `meanwhile` right after reading the user's document, before any delete."""

    meanwhile = None

    def stored_keys(self, user_id):
        keys = super().stored_keys(user_id)
        if self.meanwhile:
            action, self.meanwhile = self.meanwhile, None
            action()
        return keys


def test_a_claim_taken_again_while_it_is_being_released_survives(db):
    """X drops b; after the release has read X's document (without b), a new operation
    re-adds b, commits and finishes. The release must not delete the claim it relies on."""
    claims = ReclaimDuringRelease(db)
    store_user(db, X, "b@example.com")
    claims.claim(X, ["b@example.com"], first := Operation.start(), utcnow())
    claims.finish(X, [email_key("b@example.com")], first)
    store_user(db, X, "c@example.com", version=2)  # the removal commits

    def re_add():
        again = Operation.start()
        EmailClaims(db).claim(X, ["b@example.com"], again, utcnow())
        store_user(db, X, "c@example.com", "b@example.com", version=3)
        EmailClaims(db).finish(X, [email_key("b@example.com")], again)

    claims.meanwhile = re_add
    claims.release_unlisted(X, [email_key("b@example.com")])
    assert db.user_emails.find_one({"_id": email_key("b@example.com")})["userId"] == X
    claims.claim(X, ["c@example.com"], fix := Operation.start(), utcnow())
    claims.finish(X, [email_key("c@example.com")], fix)
    assert_clean(db)


def test_a_crashed_operations_claim_is_taken_over_only_after_the_stale_age(db, claims):
    store_user(db, X, "mine@example.com")
    crashed = Operation.start(utcnow() - STALE_CLAIM_AGE - timedelta(seconds=1))
    claims.claim(X, ["left@example.com"], crashed, crashed.started)  # then the worker died
    fresh = Operation.start()
    claims.claim(X, ["young@example.com"], fresh, utcnow())  # still in flight
    assert claims.claim(Y, ["young@example.com"], Operation.start(), utcnow()) == [
        "young@example.com"
    ]
    assert claims.claim(Y, ["left@example.com"], taker := Operation.start(), utcnow()) == []
    assert db.user_emails.find_one({"_id": "left@example.com"})["ops"] == [taker.id]


def test_a_listed_email_is_never_taken_over_however_old_its_claim(db, claims):
    store_user(db, X, "kept@example.com")
    old = Operation.start(utcnow() - timedelta(days=30))
    claims.claim(X, ["kept@example.com"], old, utcnow() - timedelta(days=30))
    assert claims.claim(Y, ["KEPT@example.com"], Operation.start(), utcnow()) == [
        "KEPT@example.com"
    ]


class InLockstep(EmailClaims):
    """Every operation takes its first email, then all wait for each other; a loser holds
    on to what it took for a moment before giving it back (as a slow worker would)."""

    def __init__(self, database, barrier):
        super().__init__(database)
        self.barrier, self.first = barrier, True

    def _claim_one(self, user_id, key, op, now, hold=True):
        taken = super()._claim_one(user_id, key, op, now, hold)
        if self.first:
            self.first = False
            self.barrier.wait(timeout=5)
        return taken

    def abandon(self, user_id, keys, op):
        time.sleep(0.05)
        super().abandon(user_id, keys, op)


@pytest.mark.parametrize("round_", range(5))
def test_overlapping_creates_cannot_all_lose(db, round_):
    """Issue 11 item 3: [x,y], [y,z], [z,x] each take their first email at the same time.
    In any one order that cannot be x, y, z (a cycle), so one of them gets both."""
    z = "33333333-3333-4333-8333-333333333333"
    wants = {X: ["x@example.com", "y@example.com"], Y: ["y@example.com", "z@example.com"],
             z: ["z@example.com", "x@example.com"]}  # fmt: skip
    barrier = threading.Barrier(len(wants))

    def create(user_id):
        return InLockstep(db, barrier).claim(user_id, wants[user_id], Operation.start(), utcnow())

    with ThreadPoolExecutor(len(wants)) as pool:
        results = list(pool.map(create, wants))
    assert [conflicts for conflicts in results if not conflicts] == [[]]


def test_an_operation_past_half_the_stale_age_gives_up(db):
    assert Operation.start(utcnow() - STALE_CLAIM_AGE / 2 - timedelta(seconds=1)).expired(utcnow())
    assert not Operation.start().expired(utcnow())


def test_an_email_dropped_while_its_adder_still_held_it_is_released_by_the_adder(db, claims):
    """A commits b; before A lets go of b's claim, B commits without b and cannot release
    it (A still holds it). A, leaving it idle, must release it: nobody else will."""
    store_user(db, X, "a@example.com")
    a = Operation.start()
    claims.claim(X, ["b@example.com"], a, utcnow())
    store_user(db, X, "a@example.com", "b@example.com", version=2)  # A commits
    store_user(db, X, "a@example.com", version=3)  # B commits without b...
    claims.release_unlisted(X, [email_key("b@example.com")])  # ...and must leave A's claim
    assert db.user_emails.find_one({"_id": "b@example.com"}) is not None
    claims.finish(X, [email_key("b@example.com")], a)
    assert db.user_emails.find_one({"_id": "b@example.com"}) is None


def test_a_create_in_flight_holds_its_claims_by_their_age_alone(db, claims):
    """Creates record no operation id (nothing to let go of afterwards); until the user is
    written, the claim's age is what keeps others off it."""
    assert claims.claim(X, ["new@example.com"], Operation.start(), utcnow(), hold=False) == []
    assert db.user_emails.find_one({"_id": "new@example.com"})["ops"] == []
    assert claims.claim(Y, ["new@example.com"], Operation.start(), utcnow()) == ["new@example.com"]
    later = utcnow() + STALE_CLAIM_AGE + timedelta(seconds=1)  # X's create died unwritten
    assert claims.claim(Y, ["new@example.com"], Operation.start(later), later) == []
