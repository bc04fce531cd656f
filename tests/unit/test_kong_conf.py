"""Compose Kong's kong.conf: its error template is the project's, and compose mounts both."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kong.problems import ERROR_TEMPLATE_JSON

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def conf() -> dict[str, str]:
    lines = (DOCKER / "kong" / "kong.conf").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_the_error_template_file_is_the_projects_and_kong_conf_names_it():
    assert (DOCKER / "kong" / "error_template.json").read_text() == ERROR_TEMPLATE_JSON
    assert conf()["error_template_json"] == "/etc/kong/error_template.json"


def test_kong_filling_the_template_gives_a_problem_body():
    # Kong: string.format(template, message, request_id)
    body = json.loads(ERROR_TEMPLATE_JSON % ("You cannot consume this service", "rid-1"))

    assert body == {
        "type": "about:blank",
        "title": "Refused by the gateway",
        "detail": "You cannot consume this service",
        "requestId": "rid-1",
    }


def test_compose_mounts_kong_conf_and_the_template_where_kong_reads_them():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    kong = compose["services"]["kong"]["volumes"]

    assert "./kong/kong.conf:/etc/kong/kong.conf:ro" in kong
    assert "./kong/error_template.json:/etc/kong/error_template.json:ro" in kong
    job = compose["services"]["kong-config"]
    assert job["environment"]["AUTH_CREDENTIALS_FILE"] == "/run/auth/credentials.json"
    assert any(v.endswith(":/run/auth:ro") for v in job["volumes"])
