"""nginx.conf generated from a rendered kong.yml, and the prepare_gateway() contract."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from kong.local_gateway import nginx_binary, prepare_gateway
from kong.nginx import generate_nginx_conf
from kong.render import render


def conf_for(p_value: int, tmp_path: Path, sticky: bool = True) -> str:
    config = yaml.safe_load(
        render(p_value, "127.0.0.1:9101", "127.0.0.1:9102", 300, sticky=sticky)
    )
    return generate_nginx_conf(config, listen="127.0.0.1:9100", prefix=tmp_path)


def block(conf: str, opening: str) -> str:
    start = conf.index(opening)
    return conf[start : conf.index("}", start) + 1]


def test_nginx_is_installed():
    assert Path(nginx_binary()).exists()


@pytest.mark.parametrize("p_value", [1, 30, 99])
def test_users_upstream_has_the_kong_weights(tmp_path, p_value):
    users = block(conf_for(p_value, tmp_path), "upstream users-upstream {")

    assert f"server 127.0.0.1:9101 weight={p_value};" in users
    assert f"server 127.0.0.1:9102 weight={100 - p_value};" in users


@pytest.mark.parametrize(("p_value", "left_out"), [(0, "9101"), (100, "9102")])
def test_a_weight_0_target_is_left_out_because_nginx_refuses_weight_0(tmp_path, p_value, left_out):
    users = block(conf_for(p_value, tmp_path), "upstream users-upstream {")

    assert left_out not in users
    assert "weight=0" not in users


def test_pin_header_selects_the_single_generation_upstreams(tmp_path):
    pin = block(conf_for(50, tmp_path), "map $http_x_users_version")

    assert "default users-upstream;" in pin
    assert '"~*^v1$" users-v1-upstream;' in pin
    assert '"~*^v2$" users-v2-upstream;' in pin


def test_limits_and_request_id_follow_the_plugins(tmp_path):
    conf = conf_for(50, tmp_path)

    assert "client_max_body_size 65536;" in conf
    assert "limit_req" not in conf  # Kong's fixed windows run in Lua (gateway.json)
    assert "proxy_set_header X-Request-ID $gateway_request_id;" in conf
    assert "proxy_set_header traceparent $gw_traceparent;" in conf


def test_the_lua_module_is_loaded_and_every_route_location_runs_the_plugins(tmp_path):
    conf = conf_for(50, tmp_path)

    assert conf.index("load_module /usr/lib/nginx/modules/ndk_http_module.so;") < conf.index(
        "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
    )
    assert f'init_by_lua_block {{ require("gateway").init("{tmp_path}/gateway.json") }}' in conf
    for location in (
        'location ~ "^/users(?:/(?<userId>[^/]+))?(?:/|$)" {',
        "location = /orders {",
        "location ^~ /docs {",
    ):
        assert 'access_by_lua_block { require("gateway").access(' in block(conf, location)
    assert "access_by_lua" not in block(conf, "location / {")  # unrouted: Kong's 404


def test_metrics_are_served_only_on_the_status_listener(tmp_path):
    config = yaml.safe_load(render(50, "127.0.0.1:9101", "127.0.0.1:9102", 300))
    without = generate_nginx_conf(config, listen="127.0.0.1:9100", prefix=tmp_path)
    conf = generate_nginx_conf(
        config, listen="0.0.0.0:9100", prefix=tmp_path, status_listen="127.0.0.1:9199"
    )

    assert "metrics()" not in without
    status = conf[conf.index("listen 127.0.0.1:9199;") :]
    assert (
        'location = /metrics { content_by_lua_block { require("gateway").metrics() } }' in status
    )
    assert conf.count("metrics()") == 1


def test_paths_keep_kong_semantics(tmp_path):
    conf = conf_for(50, tmp_path)

    # /users, /users/ and /users/{userId}[/...]: one regex, as in the Kong file
    assert 'location ~ "^/users(?:/(?<userId>[^/]+))?(?:/|$)" {' in conf
    assert "location = /orders {" in conf
    assert 'location ~ "^/(health|openapi\\.json)$" {' in conf
    assert "ready" not in conf  # the edge's own probe, not routed


def test_generated_conf_passes_nginx_t(tmp_path):
    for sub in ("logs", "temp"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(conf_for(30, tmp_path))

    result = subprocess.run(
        [nginx_binary(), "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", "/dev/stderr"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr


def test_prepare_gateway_renders_both_files_and_returns_a_foreground_argv(tmp_path):
    argv = prepare_gateway(tmp_path, {"P_VALUE": "40", "GATEWAY_PORT": "9100"})

    gateway = tmp_path.resolve() / "gateway"
    assert argv[0] == nginx_binary()
    assert argv[argv.index("-c") + 1] == str(gateway / "nginx.conf")
    assert argv[argv.index("-p") + 1] == f"{gateway}/"
    conf = (gateway / "nginx.conf").read_text()
    assert "daemon off;" in conf
    assert "listen 127.0.0.1:9100;" in conf
    assert f"pid {gateway}/nginx.pid;" in conf
    kong = yaml.safe_load((gateway / "kong.yml").read_text())
    assert [t["weight"] for t in kong["upstreams"][0]["targets"]] == [40, 60]


@pytest.mark.parametrize("p_value", ["-1", "101", "abc", ""])
def test_prepare_gateway_refuses_a_bad_p_value_before_writing(tmp_path, p_value):
    with pytest.raises(ValueError, match="P_VALUE must be an integer from 0 to 100"):
        prepare_gateway(tmp_path, {"P_VALUE": p_value})

    assert not (tmp_path / "gateway").exists()


def test_prepare_gateway_refuses_a_bad_port(tmp_path):
    with pytest.raises(ValueError, match="GATEWAY_PORT"):
        prepare_gateway(tmp_path, {"GATEWAY_PORT": "eighty"})


def test_missing_nginx_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("kong.local_gateway.shutil.which", lambda name: None)
    monkeypatch.setattr("kong.local_gateway._NGINX_CANDIDATES", ())

    with pytest.raises(RuntimeError, match="apt-get install -y nginx-light"):
        nginx_binary()


def test_the_request_id_map_applies_the_shared_token_rule(tmp_path):
    from common.request_id import REQUEST_ID_TOKEN

    conf = conf_for(50, tmp_path)
    start = conf.index("map $http_x_request_id $gateway_request_id {")
    rid = conf[start : conf.index("\n    }", start)]

    assert f'"~^{REQUEST_ID_TOKEN}$" $http_x_request_id;' in rid
    assert "default $generated_request_id;" in rid  # anything else: a fresh id


@pytest.mark.parametrize(
    ("nginx_status", "client_status"),
    [(400, 400), (405, 405), (408, 408), (411, 411), (413, 413), (414, 414), (494, 431),
     (500, 500), (501, 501), (502, 503), (503, 503), (504, 504), (505, 505)],
)  # fmt: skip
def test_every_status_nginx_makes_has_a_problem_page(tmp_path, nginx_status, client_status):
    conf = conf_for(50, tmp_path)
    uri = f"/__gateway_problem_{client_status}"

    assert f"error_page {nginx_status} ={client_status} {uri};" in conf
    page = next(line for line in conf.splitlines() if f"location = {uri} " in line)
    assert "default_type application/problem+json;" in page
    assert f'"status":{client_status},' in page
    assert '"requestId":"$gateway_request_id"' in page
    assert "add_header X-Request-ID $gateway_request_id always;" in page


def test_client_timeouts_default_to_kongs_60_seconds(tmp_path):
    config = yaml.safe_load(render(50, "127.0.0.1:9101", "127.0.0.1:9102", 300))
    default = generate_nginx_conf(config, listen="127.0.0.1:9100", prefix=tmp_path)
    short = generate_nginx_conf(
        config, listen="127.0.0.1:9100", prefix=tmp_path, client_timeout=1.5
    )

    assert "client_header_timeout 60000ms;" in default
    assert "client_body_timeout 60000ms;" in default
    assert "client_body_timeout 1500ms;" in short


def test_sticky_users_hash_the_path_user_id_consistently(tmp_path):
    conf = conf_for(50, tmp_path)
    key = block(conf, "map $uri $hash_users_upstream {")
    users = block(conf, "upstream users-upstream {")

    assert '"~^/users(?:/(?<userId>[^/]+))?(?:/|$)" $userId;' in key
    assert 'default "";' in key  # no userId: an empty key, i.e. weighted round-robin
    assert "hash $hash_users_upstream consistent;" in users
    # only the split upstream is sticky; pinned and orders upstreams stay round-robin
    assert "hash " not in block(conf, "upstream orders-upstream {")


def test_sticky_users_off_is_weighted_round_robin(tmp_path):
    conf = conf_for(50, tmp_path, sticky=False)

    assert "hash " not in block(conf, "upstream users-upstream {")
    assert "$hash_users_upstream" not in conf
