"""The credentials store: its file format, 0600 atomic writes, consumers, issuers, tokens."""

from __future__ import annotations

import json
import stat
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.auth import store
from common.auth.acl import GROUPS


@pytest.fixture
def path(tmp_path):
    return tmp_path / "auth" / "credentials.json"


def mode(p) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_create_consumer_writes_the_contract_format_with_mode_0600(path):
    key = store.create_consumer(path, "billing", ["orders:read"], {"minute": 30})
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert data["consumers"]["billing"]["groups"] == ["orders:read"]
    assert data["consumers"]["billing"]["limits"] == {"minute": 30}
    [entry] = data["consumers"]["billing"]["keys"]
    assert entry["key"] == key and len(key) >= 40 and entry["id"]
    assert data["issuers"] == {}
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_load_store_gives_frozen_consumers_found_by_key(path):
    key = store.create_consumer(path, "billing", ["orders:read", "orders:write"])
    loaded = store.load_store(path)
    name, consumer, api_key = loaded.consumer_for_key(key)
    assert name == "billing"
    assert consumer.groups == ("orders:read", "orders:write")
    assert consumer.limits == {}
    assert api_key.key == key
    assert loaded.consumer_for_key(key + "x") is None
    with pytest.raises(AttributeError):
        consumer.groups = ()  # type: ignore[misc]


def test_two_consumers_get_different_keys_and_a_duplicate_name_is_refused(path):
    a = store.create_consumer(path, "a", ["users:read"])
    b = store.create_consumer(path, "b", ["users:read"])
    assert a != b
    with pytest.raises(store.StoreError, match="already exists"):
        store.create_consumer(path, "a", ["users:read"])


@pytest.mark.parametrize("twin", ["Shop-Admin", "shop_admin", "SHOP_ADMIN"])
def test_a_name_folding_to_an_existing_consumers_is_refused(path, twin):
    # deploy/k8s/kong_consumers.py names both `shop-admin`: one would silently replace the other.
    store.create_consumer(path, "shop-admin", ["users:read"])
    with pytest.raises(store.StoreError, match="already exists as 'shop-admin'"):
        store.create_consumer(path, twin, ["users:write"])
    assert list(store.load_store(path).consumers) == ["shop-admin"]


@pytest.mark.parametrize(
    "name, groups, limits, message",
    [
        ("x", ["users:admin"], None, "unknown group"),
        ("x", [], None, "at least one group"),
        ("x", ["users:read"], {"hour": 3}, "limit"),
        ("x", ["users:read"], {"second": 0}, "whole number"),
        ("x", ["users:read"], {"second": 1, "minute": 9}, "limit"),
        ("end-users", ["users:read"], None, "reserved"),
        ("anonymous", ["users:read"], None, "reserved"),
        ("a b", ["users:read"], None, "letters"),
        # Reserved whatever the case or separator: in Kubernetes `Anonymous` would replace
        # the anonymous KongConsumer, `End_Users` the issuer's.
        ("Anonymous", ["users:read"], None, "reserved"),
        ("End_Users", ["users:read"], None, "reserved"),
        ("d\u00e9v", ["users:read"], None, "letters"),
    ],
)
def test_invalid_consumers_are_refused_and_nothing_is_written(path, name, groups, limits, message):
    with pytest.raises(store.StoreError, match=message):
        store.create_consumer(path, name, groups, limits)
    assert not path.exists()


def test_revoke_removes_the_consumer_and_its_keys(path):
    key = store.create_consumer(path, "gone", ["users:read"])
    store.create_consumer(path, "kept", ["users:read"])
    assert store.revoke_consumer(path, "gone") is True
    loaded = store.load_store(path)
    assert set(loaded.consumers) == {"kept"}
    assert loaded.consumer_for_key(key) is None
    assert store.revoke_consumer(path, "gone") is False


def test_a_write_replaces_the_file_atomically_and_leaves_no_temporary_file(path):
    store.create_consumer(path, "a", ["users:read"])
    before = path.stat().st_ino
    store.create_consumer(path, "b", ["users:read"])
    assert path.stat().st_ino != before  # a new file renamed over the old one
    assert sorted(p.name for p in path.parent.iterdir()) == ["credentials.json"]


def test_issuer_keeps_its_private_key_beside_the_store_and_only_the_public_key_in_it(path):
    issuer = store.create_issuer(path)
    data = json.loads(path.read_text())
    assert data["issuers"]["micro-local"] == {
        "algorithm": "RS256",
        "rsa_public_key": issuer.rsa_public_key,
        "consumer": "end-users",
    }
    assert "PRIVATE" not in path.read_text()
    private = store.private_key_path(path)
    loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size == 2048
    assert mode(private) == 0o600


def test_minted_tokens_verify_with_the_stored_public_key_and_expire(path):
    store.create_issuer(path)
    token = store.mint_token(path, "user-1", ttl=60)
    public = store.load_store(path).issuers["micro-local"].rsa_public_key
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"require": ["exp"]})
    assert claims["sub"] == "user-1" and claims["iss"] == "micro-local"
    assert 55 <= claims["exp"] - time.time() <= 61
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    with pytest.raises(store.StoreError):
        store.mint_token(path, "user-1", ttl=0)


def test_a_token_from_another_key_pair_fails_verification(path, tmp_path):
    store.create_issuer(path)
    other = tmp_path / "other" / "credentials.json"
    store.create_issuer(other)
    forged = store.mint_token(other, "user-1")
    public = store.load_store(path).issuers["micro-local"].rsa_public_key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public, algorithms=["RS256"])


def test_ensure_local_credentials_creates_once_and_then_reuses(path):
    first = store.ensure_local_credentials(path)
    assert first.created is True
    loaded = store.load_store(path)
    assert loaded.consumers["dev"].groups == GROUPS
    assert "micro-local" in loaded.issuers
    again = store.ensure_local_credentials(path)
    assert again.created is False and again.api_key == first.api_key
    assert store.load_store(path) == loaded


def test_store_path_prefers_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTH_CREDENTIALS_FILE", str(tmp_path / "c.json"))
    assert store.store_path() == tmp_path / "c.json"
    monkeypatch.delenv("AUTH_CREDENTIALS_FILE")
    assert store.store_path(tmp_path) == tmp_path / "auth" / "credentials.json"
    assert store.store_path().parts[-3:] == (".run", "auth", "credentials.json")


@pytest.mark.parametrize(
    "content", ["{", '{"version": 2}', '{"version": 1, "consumers": {"a": 1}}']
)
def test_a_malformed_store_is_a_store_error(path, content):
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(store.StoreError):
        store.load_store(path)
