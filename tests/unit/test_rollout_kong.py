"""micro-rollout on Kong DB-less: the re-rendered config POSTed to a stub admin API (no Kong
binary exists here), the weight read back from its targets, and `status`."""

from __future__ import annotations

import cgi
import contextlib
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from rollout.apply import KongAdmin
from rollout.cli import main


class StubKong:
    """Kong's admin API as far as the rollout uses it: POST /config, GET upstream targets."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.posted: list[dict] = []


@contextlib.contextmanager
def stub_kong(status: int = 201) -> Iterator[tuple[StubKong, str]]:
    kong = StubKong(status)

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            assert self.path == "/config"
            form = cgi.FieldStorage(
                fp=io.BytesIO(self.rfile.read(int(self.headers["Content-Length"]))),
                headers=self.headers,
                environ={"REQUEST_METHOD": "POST"},
            )
            if kong.status == 201:
                kong.posted.append(yaml.safe_load(form["config"].value))
            self._answer(kong.status, {"message": "declarative config is invalid"})

        def do_GET(self) -> None:
            assert self.path == "/upstreams/users-upstream/targets"
            (upstream,) = [
                u for u in kong.posted[-1]["upstreams"] if u["name"] == "users-upstream"
            ]
            # Kong lists targets newest first; the rollout must not rely on the order
            self._answer(200, {"data": list(reversed(upstream["targets"])), "next": None})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield kong, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_apply_posts_the_rendered_declarative_config_and_reads_the_weight_back():
    with stub_kong() as (kong, url):
        admin = KongAdmin(
            url, {"KONG_V1_TARGET": "edge-v1:8000", "KONG_V2_TARGET": "edge-v2:8000"}
        )
        admin.apply(30)
        assert admin.current() == 30

    (config,) = kong.posted
    (split,) = [u for u in config["upstreams"] if u["name"] == "users-upstream"]
    assert [(t["target"], t["weight"]) for t in split["targets"]] == [
        ("edge-v1:8000", 30),
        ("edge-v2:8000", 70),
    ]
    assert split["hash_on"] == "uri_capture"  # sticky by default, as locally
    assert {p["name"] for p in config["plugins"]} >= {"correlation-id", "prometheus"}


def test_a_refused_config_is_an_error_naming_kongs_answer():
    with stub_kong(status=400) as (_, url), pytest.raises(RuntimeError, match="400.*invalid"):
        KongAdmin(url, {}).apply(30)


def test_status_prints_the_weight_in_force_on_kong(capsys, tmp_path):
    with stub_kong() as (_, url):
        KongAdmin(url, {}).apply(75)
        code = main(
            ["status", "--gateway", "kong", "--run-dir", str(tmp_path)], {"KONG_ADMIN_URL": url}
        )
    assert code == 0
    assert "P_VALUE 75 in force on the Kong" in capsys.readouterr().out


def test_dry_run_changes_nothing(capsys, tmp_path):
    with stub_kong() as (kong, url):
        KongAdmin(url, {}).apply(100)
        code = main(
            [
                "--to",
                "0",
                "--step",
                "25",
                "--dry-run",
                "--gateway",
                "kong",
                "--run-dir",
                str(tmp_path),
            ],
            {"KONG_ADMIN_URL": url},
        )
        assert len(kong.posted) == 1
    assert code == 0
    assert "100 -> 0 via [75, 50, 25, 0]" in capsys.readouterr().out
    assert not (tmp_path / "p_value").exists()
