"""kong-render: P_VALUE to weights, refusals, and decK's offline validation of the output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from kong.checks import check_config, deck_validate
from kong.render import main, parse_p_value, render

V1, V2 = "edge-v1:8000", "edge-v2:8000"


def upstream(config: dict, name: str) -> dict[str, int]:
    (found,) = [u for u in config["upstreams"] if u["name"] == name]
    return {t["target"]: t["weight"] for t in found["targets"]}


@pytest.mark.parametrize("p_value", [0, 1, 50, 99, 100])
def test_users_weights_are_p_value_for_v1_and_the_rest_for_v2(p_value):
    config = yaml.safe_load(render(p_value, V1, V2))

    assert upstream(config, "users-upstream") == {V1: p_value, V2: 100 - p_value}
    assert upstream(config, "orders-upstream") == {V1: 100, V2: 100}
    assert check_config(config) == []


@pytest.mark.parametrize("p_value", ["0", "1", "50", "99", "100"])
def test_rendered_file_passes_deck_validate(tmp_path: Path, p_value):
    output = tmp_path / "kong.yml"

    assert main(["--p-value", p_value, "-o", str(output), "--v1-target", V1], env={}) == 0

    deck_validate(output)  # raises with decK's output on failure
    assert yaml.safe_load(output.read_text())["upstreams"][0]["targets"][0]["weight"] == int(
        p_value
    )


def test_deck_is_installed():
    assert shutil.which("deck"), "decK missing: run scripts/bootstrap.sh (apt-get install deck)"


def test_deck_validate_really_rejects_a_broken_file(tmp_path: Path):
    broken = tmp_path / "kong.yml"
    broken.write_text(render(50, V1, V2).replace("strip_path: false", "strip_path: nope"))

    with pytest.raises(RuntimeError, match="strip_path"):
        deck_validate(broken)


@pytest.mark.parametrize("raw", ["-1", "101", "abc", "", " ", "50.0", "1e2", None])
def test_anything_but_0_to_100_is_refused(raw):
    with pytest.raises(ValueError, match="P_VALUE must be an integer from 0 to 100"):
        parse_p_value(raw)


@pytest.mark.parametrize("raw", ["-1", "101", "abc", ""])
def test_cli_refuses_with_a_clear_message_and_nonzero_exit(tmp_path: Path, capsys, raw):
    output = tmp_path / "kong.yml"

    assert main(["-o", str(output)], env={"P_VALUE": raw}) != 0

    assert "P_VALUE must be an integer from 0 to 100" in capsys.readouterr().err
    assert not output.exists()


def test_cli_defaults_come_from_env(capsys):
    env = {"P_VALUE": "25", "EDGE_V1_PORT": "9101", "EDGE_V2_PORT": "9102"}

    assert main([], env=env) == 0

    config = yaml.safe_load(capsys.readouterr().out)
    assert upstream(config, "users-upstream") == {"127.0.0.1:9101": 25, "127.0.0.1:9102": 75}


def test_p_value_defaults_to_100_when_unset(capsys):
    assert main([], env={}) == 0

    config = yaml.safe_load(capsys.readouterr().out)
    assert list(upstream(config, "users-upstream").values()) == [100, 0]


def test_rate_limit_comes_from_env(capsys):
    assert main([], env={"GATEWAY_RATE_LIMIT_PER_SECOND": "77"}) == 0

    config = yaml.safe_load(capsys.readouterr().out)
    (rate,) = [p for p in config["plugins"] if p["name"] == "rate-limiting"]
    assert rate["config"] == {"second": 77, "policy": "local", "limit_by": "ip"}


@pytest.mark.parametrize(
    "argv", [["--v1-target", "edge-v1"], ["--v2-target", "a:b"], ["--rate-limit-per-second", "0"]]
)
def test_bad_targets_and_rate_limits_are_refused(capsys, argv):
    assert main(argv, env={}) != 0
    assert "kong-render:" in capsys.readouterr().err


def test_routes_follow_the_rest_api_and_pin_by_header():
    config = yaml.safe_load(render(50, V1, V2))
    routes = {r["name"]: (s["host"], r) for s in config["services"] for r in s["routes"]}

    assert routes["users-read"][0] == routes["users-write"][0] == "users-upstream"
    assert routes["orders-read"][1]["paths"] == ["/orders/", "~/orders$"]
    assert routes["users-pinned-v1-read"][0] == "users-v1-upstream"
    assert routes["users-pinned-v1-write"][1]["headers"] == {"X-Users-Version": ["v1"]}
    assert routes["users-pinned-v2-read"][1]["headers"] == {"X-Users-Version": ["v2"]}
    assert all(route["strip_path"] is False for _, route in routes.values())


def test_plugins_set_request_id_size_limit_and_rate_limit():
    plugins = {p["name"]: p["config"] for p in yaml.safe_load(render(50, V1, V2))["plugins"]}

    assert plugins["correlation-id"]["header_name"] == "X-Request-ID"
    assert plugins["correlation-id"]["echo_downstream"] is True
    assert plugins["request-size-limiting"]["allowed_payload_size"] == 64
    assert plugins["request-size-limiting"]["size_unit"] == "kilobytes"
    assert plugins["rate-limiting"]["policy"] == "local"
