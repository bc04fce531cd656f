"""users_v1 / users_v2 RPC methods with worker_factory and a mongomock repository."""

from datetime import datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from tests.support.data import address
from workers.exceptions import EmailTaken, UserNotFound, ValidationFailed
from workers.runtime.after_reply import run_now
from workers.users_v1 import UsersV1
from workers.users_v2 import UsersV2

ADDRESS = address()
NEW_ADDRESS = {**ADDRESS, "street": "2 Elm St"}


def payload(*emails, **extra):
    return {"emails": list(emails) or ["ann@example.com"], "deliveryAddress": ADDRESS, **extra}


@pytest.fixture(params=[UsersV1, UsersV2], ids=["v1", "v2"])
def service(request, users_repository):
    return worker_factory(request.param, repository=users_repository, after_reply=run_now)


@pytest.fixture
def v1(users_repository):
    return worker_factory(UsersV1, repository=users_repository, after_reply=run_now)


@pytest.fixture
def v2(users_repository):
    return worker_factory(UsersV2, repository=users_repository, after_reply=run_now)


def test_create_returns_the_stored_user_without_internals(service, users_repository):
    user = service.create(payload(firstName="Ann", phoneNumber="5551234567"))
    assert user["emails"] == ["ann@example.com"]
    assert user["firstName"] == "Ann"
    assert user["version"] == 1
    assert "_id" not in user and "eventPendingSince" not in user
    assert users_repository.find(user["userId"])["deliveryAddress"] == ADDRESS
    assert service.get(user["userId"]) == user


def test_v1_keeps_client_timestamps(v1):
    user = v1.create(payload(createdAt="2020-05-01T10:00:00+02:00"))
    assert user["createdAt"] == "2020-05-01T08:00:00.000Z"
    assert "updatedAt" not in user


def test_v2_sets_timestamps_and_ignores_client_values(v2):
    user = v2.create(payload(createdAt="1999-01-01T00:00:00Z", updatedAt="bogus"))
    created = datetime.strptime(user["createdAt"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(datetime.utcnow() - created) < timedelta(seconds=5)
    assert user["updatedAt"] == user["createdAt"]


def test_create_rejects_invalid_payload_with_field_messages(service):
    with pytest.raises(ValidationFailed) as error:
        service.create({"emails": ["bad"], "deliveryAddress": {}, "role": "admin"})
    assert set(error.value.errors) == {"emails", "deliveryAddress", "role"}


def test_create_rejects_non_object(service):
    with pytest.raises(ValidationFailed):
        service.create(["not", "an", "object"])


def test_email_belongs_to_one_user_across_generations(v1, v2):
    v1.create(payload("ann@example.com"))
    with pytest.raises(EmailTaken) as error:
        v2.create(payload("other@example.com", "ANN@example.com"))
    assert error.value.emails == ["ANN@example.com"]
    # the failed create released what it had claimed
    v2.create(payload("other@example.com"))


def test_get_unknown_user(service):
    with pytest.raises(UserNotFound):
        service.get("00000000-0000-4000-8000-000000000000")


def test_update_returns_before_and_after_and_dispatches(service, users_repository):
    user = service.create(payload())
    before, after = service.update(user["userId"], {"emails": ["new@example.com"]})
    assert before["emails"] == ["ann@example.com"] and before["version"] == 1
    assert after["emails"] == ["new@example.com"] and after["version"] == 2
    service.dispatch.assert_called_once()
    event_type, event = service.dispatch.call_args.args
    assert event_type == "user_updated"
    assert event["userId"] == user["userId"]
    assert event["userEmails"] == ["new@example.com"]
    assert event["deliveryAddress"] == ADDRESS
    assert event["version"] == 2
    assert event["updatedAt"].endswith("Z")
    assert "eventPendingSince" not in users_repository.find(user["userId"])


def test_update_leaves_the_publish_and_flag_clear_for_after_the_reply(users_repository):
    queued = []

    def after_reply(fn, *args):
        queued.append((fn, args))

    service = worker_factory(UsersV1, repository=users_repository, after_reply=after_reply)
    user = service.create(payload())
    before, after = service.update(user["userId"], {"deliveryAddress": NEW_ADDRESS})
    # returned with the change committed and flagged, nothing published yet
    assert after["version"] == 2
    service.dispatch.assert_not_called()
    assert "eventPendingSince" in users_repository.find(user["userId"])
    [(fn, args)] = queued
    fn(*args)
    service.dispatch.assert_called_once()
    assert service.dispatch.call_args.args[1]["version"] == 2
    assert "eventPendingSince" not in users_repository.find(user["userId"])


def test_update_frees_old_email_and_claims_new(service):
    user = service.create(payload("old@example.com"))
    service.update(user["userId"], {"emails": ["new@example.com"]})
    service.create(payload("old@example.com"))  # free again
    with pytest.raises(EmailTaken):
        service.create(payload("new@example.com"))


def test_update_to_an_email_of_another_user_conflicts(service):
    service.create(payload("taken@example.com"))
    user = service.create(payload("mine@example.com"))
    with pytest.raises(EmailTaken):
        service.update(user["userId"], {"emails": ["mine@example.com", "taken@example.com"]})
    assert service.get(user["userId"])["emails"] == ["mine@example.com"]


def test_v2_update_moves_updated_at_v1_does_not(v1, v2):
    created_v1 = v1.create(payload("a@example.com", updatedAt="2020-01-01T00:00:00Z"))
    _, after = v1.update(created_v1["userId"], {"deliveryAddress": NEW_ADDRESS})
    assert after["updatedAt"] == "2020-01-01T00:00:00.000Z"
    created_v2 = v2.create(payload("b@example.com"))
    _, after = v2.update(created_v2["userId"], {"deliveryAddress": NEW_ADDRESS})
    assert after["updatedAt"] >= created_v2["updatedAt"]
    assert after["deliveryAddress"] == NEW_ADDRESS


@pytest.mark.parametrize(
    "changes",
    [{}, {"firstName": "Bo"}, {"emails": []}, {"deliveryAddress": {"street": "x"}}, "text"],
)
def test_update_rejects_invalid_changes(service, changes):
    user = service.create(payload())
    with pytest.raises(ValidationFailed):
        service.update(user["userId"], changes)
    service.dispatch.assert_not_called()


def test_update_unknown_user(service):
    with pytest.raises(UserNotFound):
        service.update("00000000-0000-4000-8000-000000000000", {"emails": ["x@y.z"]})


def test_failed_publish_keeps_the_update_and_the_relay_sends_it(service, users_repository):
    user = service.create(payload())
    service.dispatch.side_effect = ConnectionError("broker gone")
    before, after = service.update(user["userId"], {"emails": ["new@example.com"]})
    assert after["version"] == 2
    assert "eventPendingSince" in users_repository.find(user["userId"])

    service.dispatch.side_effect = None
    service.dispatch.reset_mock()
    # the relay waits for a grace period; a negative one means "everything pending now"
    from workers.users import domain as users_domain

    assert users_domain.relay_pending_events(users_repository, service.dispatch, -1) == 1
    event = service.dispatch.call_args.args[1]
    assert (event["version"], event["userEmails"]) == (2, ["new@example.com"])
    assert "eventPendingSince" not in users_repository.find(user["userId"])


def test_relay_timer_entrypoint_publishes_nothing_when_all_is_sent(service):
    service.create(payload())
    assert service.relay_pending_events() == 0
    service.dispatch.assert_not_called()


def test_ping(service):
    assert service.ping() == {"service": service.name, "status": "ok"}


def test_a_user_that_never_stops_changing_gives_a_typed_conflict(service, monkeypatch):
    from workers.exceptions import UpdateConflict

    user = service.create(payload())
    # every compare-and-set loses, as if another writer always got there first
    monkeypatch.setattr(service.repository, "apply_contact_change", lambda *a: None)
    with pytest.raises(UpdateConflict):
        service.update(user["userId"], {"deliveryAddress": NEW_ADDRESS})
    assert service.get(user["userId"])["version"] == 1


def test_v1_timestamps_before_year_1000_keep_four_digit_years(v1):
    user = v1.create(payload(createdAt="0357-04-16T17:41:00Z"))
    assert user["createdAt"] == "0357-04-16T17:41:00.000Z"
