"""Cases a hostile review of the claim protocol and the order catch-up reproduced (each
failed before its fix): every test replays one interleaving and asserts the invariant."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from schemas.emails import email_key
from schemas.users import UserCreateV2Schema
from tests.support.data import address
from workers.db import invariants
from workers.exceptions import EmailTaken, StorageUnavailable
from workers.orders import domain as orders_domain
from workers.orders.repository import OrdersRepository
from workers.runtime.documents import utcnow
from workers.users import domain as users_domain
from workers.users.email_claims import EmailClaims, migrate_legacy_claims
from workers.users.repository import UsersRepository

ADDRESS = address()
NEW_ADDRESS = {**ADDRESS, "street": "2 Elm St"}


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(users_domain, "utcnow", clock)
    return clock


def payload(*emails):
    return {"emails": list(emails), "deliveryAddress": ADDRESS}


def holders(db, email):
    key = email_key(email)
    return sorted(
        u["userId"] for u in db.users.find() if key in {email_key(e) for e in u["emails"]}
    )


def open_violations(db):
    return [f"{v.kind}: {v.detail}" for v in invariants.audit(db).open]


# --- 1. claims -------------------------------------------------------------------------


class StallAfterClaiming(EmailClaims):
    """Runs `meanwhile` once, right after an operation has taken its claims (a GC pause, a
    slow nx writer, a partitioned worker), before the user is written."""

    meanwhile = None

    def claim(self, user_id, emails, op, now):
        conflicts = super().claim(user_id, emails, op, now)
        if StallAfterClaiming.meanwhile:
            action, StallAfterClaiming.meanwhile = StallAfterClaiming.meanwhile, None
            action()
        return conflicts


class StallBeforeInsert(UsersRepository):
    @property
    def email_claims(self):
        return StallAfterClaiming(self.database)


def test_create_stalled_past_the_stale_age_does_not_commit(mock_database, clock):
    """create_user never checks op.expired(): a create paused >60 s after claiming still
    inserts after another user took its claims over as orphans."""
    repo = StallBeforeInsert(mock_database)
    other = UsersRepository(mock_database)

    def another_user_after_61_seconds():
        clock.now += timedelta(seconds=61)
        users_domain.create_user(other, payload("Ann@example.com"), users_domain.V2)

    StallAfterClaiming.meanwhile = another_user_after_61_seconds
    with contextlib.suppress(Exception):  # a refusal is the correct outcome
        users_domain.create_user(repo, payload("ann@example.com"), users_domain.V2)
    assert len(holders(mock_database, "ann@example.com")) <= 1, open_violations(mock_database)


class InsertLandsLate(UsersRepository):
    """The insert times out client-side (socketTimeoutMS) while the server still applies
    it: nx is one serial writer, so a queued write lands after the client gave up."""

    late: dict | None = None

    def insert(self, document):
        self.late = dict(document)
        raise StorageUnavailable("The database is unreachable (NetworkTimeout).")


def test_create_whose_insert_times_out_but_lands_keeps_its_claims(mock_database, clock):
    repo = InsertLandsLate(mock_database)
    with pytest.raises(StorageUnavailable):
        users_domain.create_user(repo, payload("bob@example.com"), users_domain.V2)
    mock_database.users.insert_one(repo.late)  # the server applies the queued write
    with contextlib.suppress(EmailTaken):
        users_domain.create_user(
            UsersRepository(mock_database), payload("BOB@example.com"), users_domain.V2
        )
    assert len(holders(mock_database, "bob@example.com")) <= 1, open_violations(mock_database)


# --- 2. orders -------------------------------------------------------------------------


def test_an_order_whose_catch_up_read_fails_is_not_left_stale(orders_repository):
    """The user changes between create_order's first read and the insert (its event finds
    no order), then the catch-up RPC fails: the order is stored, the client gets an error,
    and nothing ever brings the order up to date."""
    user_id = "11111111-1111-4111-8111-111111111111"
    reads = iter(
        [
            {"userId": user_id, "emails": ["old@example.com"], "deliveryAddress": ADDRESS,
             "version": 1},
            StorageUnavailable("users_v2 did not answer"),
        ]
    )  # fmt: skip

    def fetch_user(_):
        answer = next(reads)
        if isinstance(answer, Exception):
            raise answer
        return answer

    body = {"userId": user_id, "items": [{"itemId": "i", "quantity": 1, "price": 1.0}],
            "userEmails": ["old@example.com"], "deliveryAddress": ADDRESS,
            "orderStatus": "under process"}  # fmt: skip
    with pytest.raises(StorageUnavailable):
        orders_domain.create_order(orders_repository, body, fetch_user)
    # v2's event was applied before the insert (no order then); the catch-up never ran.
    stored = list(orders_repository.orders.find({"userId": user_id}))
    assert stored == [] or stored[0]["userVersion"] == 2, stored


class AuditDuringDetails(OrdersRepository):
    """Runs `micro-db check --repair` right before and right after update_details' write."""

    def update_fields(self, order_id, fields, user_version=None):
        invariants.audit(self.database, repair=True)
        changed = super().update_fields(order_id, fields, user_version)
        invariants.audit(self.database, repair=True)
        return changed


def test_a_repair_beside_traffic_never_undoes_a_hand_set_contact(mock_database):
    user_id = "11111111-1111-4111-8111-111111111111"
    mock_database.users.insert_one(
        {"userId": user_id, "emails": ["u@example.com"], "deliveryAddress": ADDRESS,
         "version": 3}
    )  # fmt: skip
    mock_database.user_emails.insert_one(
        {"_id": "u@example.com", "userId": user_id, "ops": [], "rev": "r", "changedAt": utcnow()}
    )
    repo = AuditDuringDetails(mock_database)
    order = {"orderId": "22222222-2222-4222-8222-222222222222", "userId": user_id,
             "items": [{"itemId": "i", "quantity": 1, "price": 1.0}],
             "userEmails": ["u@example.com"], "deliveryAddress": ADDRESS,
             "orderStatus": "under process", "userVersion": 3,
             "createdAt": utcnow(), "updatedAt": utcnow()}  # fmt: skip
    repo.insert(order)
    _, after = orders_domain.update_details(
        repo, order["orderId"], {"deliveryAddress": NEW_ADDRESS}
    )
    assert after["deliveryAddress"] == NEW_ADDRESS  # what the client was told
    assert repo.find(order["orderId"])["deliveryAddress"] == NEW_ADDRESS  # what is stored


# --- 3. audit --------------------------------------------------------------------------


def test_a_scoped_repair_does_not_delete_the_claim_of_a_user_outside_the_scope(
    mock_database,
):
    """X and Z both list k (already a violation); Z holds k's claim. A repair scoped to X
    deletes Z's claim, after which a third user can take k as well."""
    x, z = "11111111-1111-4111-8111-111111111111", "33333333-3333-4333-8333-333333333333"
    old = utcnow() - timedelta(minutes=5)
    mock_database.users.insert_one({"userId": x, "emails": ["K@example.com"], "version": 1,
                                    "deliveryAddress": ADDRESS})  # fmt: skip
    mock_database.users.insert_one({"userId": z, "emails": ["k@example.com"], "version": 1,
                                    "deliveryAddress": ADDRESS})  # fmt: skip
    mock_database.user_emails.insert_one(
        {"_id": "k@example.com", "userId": z, "ops": [], "rev": "r", "changedAt": old}
    )
    invariants.audit(mock_database, repair=True, user_ids=[x])
    assert mock_database.user_emails.find_one({"_id": "k@example.com"}) is not None


# --- 4. normalisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        ("ann@example.com", "ann@example.com\u3002"),  # ideographic full stop as trailing dot
        ("ann@example.com", "ann\u034f@example.com"),  # combining grapheme joiner (Mn)
        ("ann@example.com", "ann\ufe0f@example.com"),  # variation selector-16 (Mn)
        ("ann@example.com", "ann\u3164@example.com"),  # hangul filler (Lo), invisible
        ("ann@stra\u00dfe.de", "ann@xn--strae-oqa.de"),  # one IDNA2008 domain, two forms
    ],
)
def test_one_address_in_two_forms_is_one_key_or_refused(first, second):
    schema = UserCreateV2Schema()
    try:
        schema.load(payload(second))
    except Exception:  # noqa: BLE001 - refusing the odd form is fine too
        return
    assert email_key(first) == email_key(second)


def test_distinct_idna2008_domains_are_distinct_keys():
    # IDNA2008 (non-transitional UTS46) keeps sharp s: strasse.de is another domain.
    assert email_key("ann@stra\u00dfe.de") != email_key("ann@strasse.de")


def test_a_lone_surrogate_is_refused_by_the_worker_schema():
    """The edge refuses it, but anyone on the broker reaches the worker: bson then raises
    UnicodeEncodeError (not a ServiceError) from the claim insert."""
    with pytest.raises(Exception) as error:
        UserCreateV2Schema().load({**payload("ann@example.com"), "firstName": "\ud800"})
    assert "ValidationError" in type(error.value).__name__


def test_a_lone_surrogate_over_rpc_is_a_validation_error_not_a_crash(users_repository):
    from workers.exceptions import ServiceError

    with pytest.raises(ServiceError):
        users_domain.create_user(users_repository, payload("\ud800@example.com"), users_domain.V2)


def test_no_claim_left_behind_after_a_surrogate_name(users_repository, mock_database):
    body = {**payload("sur@example.com"), "firstName": "x\ud800"}
    with pytest.raises(Exception):  # noqa: B017
        users_domain.create_user(users_repository, body, users_domain.V2)
    assert open_violations(mock_database) == []


def test_a_claim_made_before_the_new_key_still_guards_its_email(mock_database, clock):
    """A user stored before the normalised key (claim keyed by email.lower(), no ops/rev):
    the new key differs for a Unicode domain, so `micro-db setup` migrates the claims."""
    x = "11111111-1111-4111-8111-111111111111"
    mock_database.users.insert_one({"userId": x, "emails": ["ann@bücher.de"], "version": 1,
                                    "deliveryAddress": ADDRESS})  # fmt: skip
    mock_database.user_emails.insert_one(
        {"_id": "ann@bücher.de", "userId": x, "claimedAt": utcnow() - timedelta(days=9)}
    )
    assert migrate_legacy_claims(mock_database) == 1
    with contextlib.suppress(EmailTaken):
        users_domain.create_user(
            UsersRepository(mock_database), payload("Ann@bücher.de"), users_domain.V2
        )
    assert len(holders(mock_database, "ann@bücher.de")) <= 1, open_violations(mock_database)
    assert open_violations(mock_database) == []
