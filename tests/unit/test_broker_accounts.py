"""launch/broker_accounts: the permission table, password hashes and the credentials file."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from kombu.utils.url import parse_url

from launch import broker_accounts
from launch.broker_accounts import COMPONENTS, OWNER_TAG

ROOT_DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
V1_EVENTS_QUEUE = "evt-users_v1-user_updated--orders.handle_user_updated_v1"


def allowed(kind: str, resource: str) -> set[str]:
    """Components whose `kind` regex matches `resource`, the way RabbitMQ matches it."""
    return {
        component
        for component, account in broker_accounts.accounts().items()
        if re.search(account.permissions()[kind], resource)
    }


@pytest.mark.parametrize(
    ("kind", "resource", "components"),
    [
        ("write", "users_v1.events", {"users_v1", "operator"}),
        ("write", "users_v2.events", {"users_v2", "operator"}),
        ("configure", "users_v1.events", {"users_v1", "operator"}),
        ("configure", "nameko-rpc", {"operator"}),
        ("write", "nameko-rpc", {"users_v1", "users_v2", "orders", "edge", "operator"}),
        ("write", "amq.default", {"users_v1", "users_v2", "orders", "operator"}),
        ("read", "rpc-orders", {"orders", "operator"}),
        ("configure", "rpc-orders", {"orders", "operator"}),
        ("read", V1_EVENTS_QUEUE, {"orders", "operator"}),
        ("read", f"{V1_EVENTS_QUEUE}.dead-letter", {"orders", "operator"}),
        (
            "configure",
            "rpc.reply-orders-0b7c6c7e-8f51-4c1e-9d43-3f0e3c1f9a10",
            {"orders", "operator"},
        ),
        ("configure", "rpc.reply-orders-x.y", {"operator"}),  # anchored: no look-alike names
        ("read", "rpc-users_v1x", {"operator"}),
    ],
)
def test_the_table_grants_each_resource_to_its_owners_only(kind, resource, components):
    assert allowed(kind, resource) == components


def test_the_edge_may_only_publish_requests():
    edge = broker_accounts.accounts()["edge"]
    assert (edge.configure, edge.write, edge.read) == ("^$", r"^(nameko-rpc)$", "^$")


def test_password_hash_is_rabbitmqs_sha256_scheme():
    # base64(salt + sha256(salt + password)), RabbitMQ's rabbit_password_hashing_sha256; that
    # the broker accepts it is shown by every login in tests/integration/test_broker_permissions.
    salt = bytes.fromhex("908DC60A")  # the salt of the worked example in RabbitMQ's guide
    decoded = base64.b64decode(broker_accounts.password_hash("test12", salt))

    assert decoded == salt + hashlib.sha256(salt + b"test12").digest()
    assert broker_accounts.password_hash("test12") != broker_accounts.password_hash("test12")


def test_passwords_are_private_reused_rotated_and_per_vhost(tmp_path):
    first = broker_accounts.stored_passwords(tmp_path, "a")
    path = tmp_path / broker_accounts.CREDENTIALS_FILE
    other = broker_accounts.stored_passwords(tmp_path, "b")

    assert set(first) == set(COMPONENTS) and len(set(first.values())) == len(COMPONENTS)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert broker_accounts.stored_passwords(tmp_path, "a") == first
    rotated = broker_accounts.stored_passwords(tmp_path, "a", rotate=True)
    assert set(rotated.values()).isdisjoint(first.values())
    assert broker_accounts.stored_passwords(tmp_path, "b") == other


def test_definitions_hold_hashes_not_passwords_and_mark_every_user_ours():
    passwords = {component: f"secret-{component}" for component in COMPONENTS}
    rendered = broker_accounts.definitions("/", passwords, prefix="")
    text = json.dumps(rendered)

    assert not any(password in text for password in passwords.values())
    assert [user["name"] for user in rendered["users"]] == list(COMPONENTS)
    assert all(OWNER_TAG in user["tags"] for user in rendered["users"])
    assert [e["name"] for e in rendered["exchanges"]] == ["nameko-rpc", "users_v1.events",
                                                         "users_v2.events"]  # fmt: skip


def test_render_refuses_missing_passwords(tmp_path):
    with pytest.raises(SystemExit, match="RABBITMQ_EDGE_PASSWORD"):
        broker_accounts.render(tmp_path / "d.json", "/", {"RABBITMQ_ORDERS_PASSWORD": "x"})
    assert not (tmp_path / "d.json").exists()


def test_uris_quote_the_vhost_and_credentials():
    password = broker_accounts.generate_password() + "/:@"
    uri = broker_accounts.amqp_uri("h:5672", "test-1.edge", password, "/")

    assert parse_url(uri) == {"transport": "amqp", "hostname": "h", "port": 5672,
                              "userid": "test-1.edge", "password": password,
                              "virtual_host": "/"}  # fmt: skip


def test_docs_show_the_table_the_code_applies():
    assert broker_accounts.markdown_table() in ROOT_DOCS.read_text()
