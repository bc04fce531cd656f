"""Consumers rendered from the credentials store, and the local gateway's Lua table."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from common import defaults
from common.auth import store
from kong.checks import check_config
from kong.consumers import consumer_id
from kong.lua_config import lua_config
from kong.nginx import route_groups
from kong.render import main, render

V1, V2 = "127.0.0.1:9101", "127.0.0.1:9102"


@pytest.fixture(scope="module")
def store_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "credentials.json"
    store.ensure_local_credentials(path, "dev")
    store.create_consumer(path, "reader", ["orders:read"], {"second": 3})
    return path


@pytest.fixture(scope="module")
def config(store_file: Path) -> dict:
    return yaml.safe_load(render(50, V1, V2, store=store.load_store(store_file)))


def consumers(config: dict) -> dict[str, dict]:
    return {c["username"]: c for c in config["consumers"]}


def test_api_key_consumers_carry_their_keys_groups_and_own_limit(config, store_file):
    saved = store.load_store(store_file)
    dev, reader = consumers(config)["dev"], consumers(config)["reader"]

    assert dev["keyauth_credentials"] == [
        {"id": k.id, "key": k.key} for k in saved.consumers["dev"].keys
    ]
    assert [a["group"] for a in dev["acls"]] == list(saved.consumers["dev"].groups)
    assert "plugins" not in dev  # no own limit: the global per-IP one applies
    assert reader["plugins"] == [
        {
            "name": "rate-limiting",
            "config": {"second": 3, "policy": "local", "limit_by": "consumer"},
        }
    ]
    assert dev["id"] == consumer_id("dev") != consumer_id("reader")


def test_the_issuer_is_a_consumer_whose_jwt_secret_key_is_the_iss(config, store_file):
    issuer = store.load_store(store_file).issuers[store.LOCAL_ISSUER]
    (secret,) = consumers(config)["end-users"]["jwt_secrets"]

    assert secret["key"] == store.LOCAL_ISSUER
    assert secret["algorithm"] == "RS256"
    assert secret["rsa_public_key"] == issuer.rsa_public_key


def test_the_private_key_is_never_rendered(store_file):
    text = render(50, V1, V2, store=store.load_store(store_file))
    private = store.private_key_path(store_file).read_text()

    assert "PRIVATE KEY" not in text
    assert private.splitlines()[1] not in text


def test_the_anonymous_consumer_is_refused_with_www_authenticate(config):
    anonymous = consumers(config)["anonymous"]
    plugins = {p["name"]: p["config"] for p in anonymous["plugins"]}

    assert plugins["request-termination"]["status_code"] == 401
    assert plugins["response-transformer"]["add"]["headers"] == [
        'WWW-Authenticate:Key realm="kong"'
    ]
    assert "acls" not in anonymous


def test_without_a_store_only_the_placeholders_exist_and_the_cli_says_so(tmp_path, capsys):
    missing = tmp_path / "none.json"

    assert main(["--credentials", str(missing)], env={}) == 0

    out = capsys.readouterr()
    assert f"no credentials store at {missing}" in out.err
    assert [c["username"] for c in yaml.safe_load(out.out)["consumers"]] == [
        "anonymous",
        "end-users",
    ]


def test_the_cli_renders_the_store_it_is_given(store_file, capsys):
    assert main(["--credentials", str(store_file)], env={}) == 0

    assert "reader" in consumers(yaml.safe_load(capsys.readouterr().out))


def test_cors_origins_and_tracing_come_from_settings(capsys):
    env = {
        "CORS_ORIGINS": "https://app.example, http://localhost:3000",
        "KONG_OTEL_TRACES_ENDPOINT": "http://otel-collector:4318/v1/traces",
    }
    assert main([], env=env) == 0

    plugins = {p["name"]: p["config"] for p in yaml.safe_load(capsys.readouterr().out)["plugins"]}
    assert plugins["cors"]["origins"] == ["https://app.example", "http://localhost:3000"]
    assert plugins["opentelemetry"]["traces_endpoint"] == env["KONG_OTEL_TRACES_ENDPOINT"]
    assert plugins["opentelemetry"]["propagation"]["extract"] == ["w3c"]
    assert plugins["opentelemetry"]["sampling_rate"] == defaults.TRACE_SAMPLE_RATIO


def test_kong_samples_at_the_ratio_the_edges_use(capsys):
    env = {"KONG_OTEL_TRACES_ENDPOINT": "http://c:4318/v1/traces", "TRACE_SAMPLE_RATIO": "0.1"}
    assert main([], env=env) == 0

    plugins = {p["name"]: p["config"] for p in yaml.safe_load(capsys.readouterr().out)["plugins"]}
    assert plugins["opentelemetry"]["sampling_rate"] == 0.1


def test_no_tracing_plugin_without_an_endpoint(config):
    assert "opentelemetry" not in {p["name"] for p in config["plugins"]}


@pytest.mark.parametrize("origins", ["app.example", "https://app.example/path", "ftp://x"])
def test_a_bad_origin_is_refused(origins, capsys):
    assert main([], env={"CORS_ORIGINS": origins}) == 2
    assert "CORS_ORIGINS" in capsys.readouterr().err


def test_the_lua_table_holds_keys_issuers_and_routes_in_kongs_order(config, store_file):
    saved = store.load_store(store_file)
    table = lua_config(config, list(route_groups(config).values()))

    dev_key = saved.consumers["dev"].keys[0]
    assert table["keys"][dev_key.key] == {"consumer": "dev", "id": dev_key.id}
    assert table["issuers"][store.LOCAL_ISSUER]["consumer"] == "end-users"
    assert table["consumers"]["reader"]["rate_limiting"]["second"] == 3
    assert table["consumers"]["anonymous"]["anonymous"] is True
    users = next(g for g in table["groups"] if g[0]["name"].startswith("users-pinned"))
    # Header and methods first, then header only, then methods, then the catch-all.
    names = [r["name"] for r in users]
    assert names.index("users-pinned-v1-read") < names.index("users-pinned-v1-write")
    assert names.index("users-pinned-v2-write") < names.index("users-read")
    assert names[-1] == "users-write"
    assert next(r for r in users if r["name"] == "users-read")["acl"] == ["users:read"]


def broken(config: dict, change) -> list[str]:
    config = copy.deepcopy(config)
    change(config)
    return check_config(config)


def service(config: dict, name: str) -> dict:
    return next(s for s in config["services"] if s["name"] == name)


def route(config: dict, name: str) -> dict:
    return next(r for s in config["services"] for r in s["routes"] if r["name"] == name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: service(c, "orders").pop("plugins"), "key-auth and jwt must both be on"),
        (
            lambda c: service(c, "users")["plugins"][0]["config"].update(hide_credentials=True),
            "hide_credentials false",
        ),
        (
            lambda c: service(c, "users")["plugins"][1]["config"].update(claims_to_verify=[]),
            "verify exp",
        ),
        (
            lambda c: route(c, "orders-write")["plugins"][0]["config"].update(
                allow=["orders:read"]
            ),
            "acl must allow ['orders:write']",
        ),
        (lambda c: route(c, "users-read").pop("methods"),
         "users-read: acl must allow ['users:write']"),
        (
            lambda c: route(c, "edge-meta")["paths"].append("/ready"),
            "must not route it",
        ),
        (lambda c: route(c, "edge-meta").pop("plugins"), "remove client identity headers"),
        (
            lambda c: c["consumers"][0].update(acls=[{"group": "users:read"}]),
            "no groups and no keys",
        ),
        (lambda c: c["consumers"].pop(0), "consumer anonymous missing"),
        (lambda c: c["consumers"][0]["plugins"].pop(1), "must carry WWW-Authenticate"),
        (
            lambda c: consumers(c)["reader"]["plugins"][0]["config"].update(limit_by="ip"),
            "by consumer",
        ),
        (lambda c: c["plugins"].remove(next(p for p in c["plugins"] if p["name"] == "cors")),
         "cors missing"),
    ],
)  # fmt: skip
def test_each_broken_access_rule_is_reported(config, change, message):
    problems = broken(config, change)

    assert any(message in problem for problem in problems), problems
