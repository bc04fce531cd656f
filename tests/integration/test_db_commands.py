"""`micro-db setup` and `seed` against the wire server."""

import pytest
from pymongo import MongoClient

from workers.db.commands import main, seed_database, setup_database

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_db(mongo_uri, mongo_db_name):
    client = MongoClient(mongo_uri)
    yield client[mongo_db_name]
    client.drop_database(mongo_db_name)
    client.close()


def test_setup_is_idempotent_and_keeps_data(fresh_db):
    first = setup_database(fresh_db)
    assert "created users" in first and "created orders" in first
    fresh_db.users.insert_one({"userId": "keep-me"})
    second = setup_database(fresh_db)
    assert "updated validator of users" in second
    assert fresh_db.users.count_documents({"userId": "keep-me"}) == 1
    indexes = {next(iter(ix["key"])) for ix in fresh_db.users.list_indexes()}
    assert {"userId", "emails"} <= indexes
    order_indexes = {next(iter(ix["key"])) for ix in fresh_db.orders.list_indexes()}
    assert {"orderId", "orderStatus", "userId"} <= order_indexes


def test_reset_drops_data(fresh_db):
    setup_database(fresh_db)
    fresh_db.users.insert_one({"userId": "gone"})
    setup_database(fresh_db, reset=True)
    assert fresh_db.users.count_documents({}) == 0


def test_seed_is_deterministic_and_idempotent(fresh_db, capsys):
    setup_database(fresh_db)
    labels = seed_database(fresh_db, random_seed=3)
    again = seed_database(fresh_db, random_seed=3)
    assert labels == again
    assert fresh_db.users.count_documents({}) == 5
    assert fresh_db.orders.count_documents({}) == 15
    assert sorted(fresh_db.users.distinct("emails")) == [
        f"user{n}@example.com" for n in range(1, 6)
    ]
    for order in fresh_db.orders.find():
        assert 1 <= len(order["items"]) <= 3
    assert "20/20" in capsys.readouterr().out  # 5 users + 15 orders


def test_cli_runs_against_the_env_database(mongo_uri, mongo_db_name, monkeypatch, capsys):
    monkeypatch.setenv("MONGO_URI", mongo_uri)
    monkeypatch.setenv("MONGO_DB", mongo_db_name)
    assert main(["setup"]) == 0
    assert main(["seed", "--random-seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "u1\t" in out and "o15\t" in out
    MongoClient(mongo_uri).drop_database(mongo_db_name)


def test_cli_reports_an_unreachable_server(monkeypatch, capsys):
    from tests.support.net import free_port

    monkeypatch.setenv("MONGO_URI", f"mongodb://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MONGO_TIMEOUT_MS", "300")
    assert main(["setup"]) == 1
    assert "cannot reach MongoDB" in capsys.readouterr().err


def test_check_is_clean_on_the_seed_then_finds_and_repairs_a_lost_claim(
    mongo_uri, mongo_db_name, monkeypatch, capsys
):
    monkeypatch.setenv("MONGO_URI", mongo_uri)
    monkeypatch.setenv("MONGO_DB", mongo_db_name)
    assert main(["setup"]) == 0
    assert main(["seed", "--random-seed", "5"]) == 0
    assert main(["check"]) == 0
    assert (
        "5 users, 5 email claims, 15 orders with a user: 0 violations" in capsys.readouterr().out
    )
    with MongoClient(mongo_uri) as client:
        client[mongo_db_name].user_emails.delete_one({"_id": "user3@example.com"})
    assert main(["check"]) == 1
    assert "missing-claim: user3@example.com" in capsys.readouterr().out
    assert main(["check", "--repair"]) == 0
    assert main(["check", "--json"]) == 0
    assert '"open": 0' in capsys.readouterr().out


def test_check_reports_an_unreachable_database(monkeypatch, capsys):
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:9")
    monkeypatch.setenv("MONGO_TIMEOUT_MS", "300")
    assert main(["check"]) == 1
    assert "cannot reach MongoDB" in capsys.readouterr().err
