"""`micro-auth` and the first-run credentials of the local stack (launch/)."""

from __future__ import annotations

import stat

import jwt
import pytest

from common.auth import store
from launch import auth_cli, credentials


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """micro-auth on a store of this test's own, with no local gateway to reload."""
    path = tmp_path / "auth" / "credentials.json"
    store.ensure_local_credentials(path)
    monkeypatch.setenv("AUTH_CREDENTIALS_FILE", str(path))
    monkeypatch.setattr(auth_cli, "RUN_DIR", tmp_path)
    return path


def test_keys_create_prints_a_key_the_store_knows(cli, capsys):
    assert auth_cli.main(["keys", "create", "shop", "--groups", "orders:read,orders:write",
                          "--per-second", "5"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    key = out.strip()
    name, consumer, _ = store.load_store(cli).consumer_for_key(key)
    assert name == "shop" and consumer.groups == ("orders:read", "orders:write")
    assert consumer.limits == {"second": 5}
    assert "no local gateway running" in err


def test_keys_list_names_consumers_but_never_their_keys(cli, capsys):
    auth_cli.main(["keys", "create", "reports", "--groups", "orders:read", "--per-minute", "60"])
    key = capsys.readouterr().out.strip()
    assert auth_cli.main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    assert "reports" in out and "60/minute" in out and "dev" in out and "end-users" in out
    assert key not in out and store.load_store(cli).consumers["dev"].keys[0].key not in out


def test_keys_revoke_removes_the_consumer(cli, capsys):
    auth_cli.main(["keys", "create", "tmp", "--groups", "users:read"])
    key = capsys.readouterr().out.strip()
    assert auth_cli.main(["keys", "revoke", "tmp"]) == 0
    assert store.load_store(cli).consumer_for_key(key) is None
    assert auth_cli.main(["keys", "revoke", "tmp"]) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "create", "x", "--groups", "users:admin"],
        ["keys", "create", "x", "--groups", "users:read", "--per-second", "0"],
        ["keys", "create", "dev", "--groups", "users:read"],
        ["token", "--user", "u1", "--ttl", "0"],
    ],
)
def test_invalid_requests_exit_2_with_a_message_and_change_nothing(cli, capsys, argv):
    before = cli.read_bytes()
    assert auth_cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("micro-auth: ")
    assert cli.read_bytes() == before


def test_both_limits_at_once_are_refused_by_the_parser(cli):
    with pytest.raises(SystemExit):
        auth_cli.main(["keys", "create", "x", "--groups", "users:read", "--per-second", "1",
                       "--per-minute", "1"])  # fmt: skip


def test_token_prints_an_rs256_jwt_for_the_user(cli, capsys):
    assert auth_cli.main(["token", "--user", "3f1c", "--ttl", "120"]) == 0
    token = capsys.readouterr().out.strip()
    public = store.load_store(cli).issuers["micro-local"].rsa_public_key
    claims = jwt.decode(token, public, algorithms=["RS256"])
    assert claims["sub"] == "3f1c" and claims["exp"] - claims["iat"] == 120


def test_a_change_asks_the_running_local_gateway_to_reload(cli, tmp_path, monkeypatch, capsys):
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "nginx.pid").write_text("1")
    reloaded = []
    monkeypatch.setattr(
        "kong.local_gateway.reload_gateway", lambda run_dir, env: reloaded.append(env)
    )
    auth_cli.main(["keys", "create", "late", "--groups", "users:read"])
    assert "local gateway reloaded" in capsys.readouterr().err
    assert reloaded[0]["AUTH_CREDENTIALS_FILE"] == str(cli)


def test_the_first_run_creates_the_store_and_the_dev_key_once(tmp_path):
    env, note = credentials.prepare({}, tmp_path, 8000)
    path = tmp_path / "auth" / "credentials.json"
    assert env["AUTH_CREDENTIALS_FILE"] == str(path)
    dev_env = tmp_path / "dev-credentials.env"
    key = dev_env.read_text().strip().removeprefix("API_KEY=")
    assert store.load_store(path).consumer_for_key(key)[0] == "dev"
    for private in (path, dev_env, store.private_key_path(path)):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "created" in note and str(dev_env) in note and '"apikey: $API_KEY"' in note
    again_env, again = credentials.prepare({}, tmp_path, 8000)
    assert again_env == env and "using" in again
    assert dev_env.read_text() == f"API_KEY={key}\n"


def test_an_explicit_store_is_used_where_it_is(tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    env, _ = credentials.prepare({"AUTH_CREDENTIALS_FILE": str(elsewhere)}, tmp_path, 8000)
    assert env["AUTH_CREDENTIALS_FILE"] == str(elsewhere) and elsewhere.exists()
