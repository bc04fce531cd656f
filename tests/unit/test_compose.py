"""docker/: the compose file's shape and the Dockerfile's rules (Docker can't run here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kong.checks import deck_validate
from kong.render import main as kong_render

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker" / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
WORKERS = {
    "users-v1": "workers.users_v1",
    "users-v2": "workers.users_v2",
    "orders": "workers.orders",
}


def depends(service: str) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in SERVICES[service]["depends_on"].items()}


def test_the_stack_has_every_part():
    assert set(SERVICES) == {
        "mongo",
        "rabbitmq",
        "db-setup",
        *WORKERS,
        "edge-v1",
        "edge-v2",
        "kong-config",
        "kong",
    }


@pytest.mark.parametrize(("service", "module"), WORKERS.items())
def test_workers_run_nameko_and_can_be_scaled(service, module):
    worker = SERVICES[service]

    assert worker["command"] == ["nameko", "run", "--config", "config.yaml", module]
    assert "container_name" not in worker and "ports" not in worker  # --scale needs both absent
    assert depends(service) == {
        "rabbitmq": "service_healthy",
        "db-setup": "service_completed_successfully",
    }


@pytest.mark.parametrize("service", ["mongo", "rabbitmq", "edge-v1", "edge-v2", "kong"])
def test_long_running_dependencies_have_health_checks(service):
    assert SERVICES[service]["healthcheck"]["test"][0] == "CMD"


def test_db_setup_is_a_one_shot_job_after_mongo_is_healthy():
    job = SERVICES["db-setup"]

    assert job["command"] == ["micro-db", "setup"]
    assert job["restart"] == "no"
    assert depends("db-setup") == {"mongo": "service_healthy"}


@pytest.mark.parametrize(("service", "users"), [("edge-v1", "users_v1"), ("edge-v2", "users_v2")])
def test_edges_serve_one_users_generation_each_on_port_8000(service, users):
    edge = SERVICES[service]

    assert edge["command"][:3] == ["gunicorn", "-c", "http_edge/gunicorn_conf.py"]
    assert edge["environment"]["USERS_SERVICE"] == users
    assert edge["environment"]["EDGE_BIND"] == "0.0.0.0:8000"
    assert "ports" not in edge  # reachable only through Kong


def test_kong_is_3x_db_less_on_the_rendered_file_and_waits_for_it():
    kong = SERVICES["kong"]
    env = kong["environment"]

    assert re.fullmatch(r"\$\{KONG_IMAGE:-kong:3(\.\d+)*\}", kong["image"])
    assert env["KONG_DATABASE"] == "off"
    output = SERVICES["kong-config"]["command"][-1]
    assert env["KONG_DECLARATIVE_CONFIG"] == output
    assert depends("kong")["kong-config"] == "service_completed_successfully"
    assert "${GATEWAY_PORT:-8000}:8000" in kong["ports"]
    assert all(p.startswith("127.0.0.1:") for p in kong["ports"] if p.endswith(":8001"))


def test_render_job_takes_p_value_from_env_and_its_command_renders_valid_config(tmp_path):
    job = SERVICES["kong-config"]
    argv = job["command"]
    assert argv[0] == "kong-render"
    assert job["environment"]["P_VALUE"] == "${P_VALUE:-100}"
    output = tmp_path / "kong.yml"

    assert kong_render([*argv[1:-1], str(output)], env={"P_VALUE": "35"}) == 0

    deck_validate(output)
    text = output.read_text()
    assert 'target: "edge-v1:8000"\n        weight: 35' in text
    assert 'target: "edge-v2:8000"\n        weight: 65' in text


def test_no_secret_is_committed():
    assert "guest:guest" not in COMPOSE_TEXT
    rabbit = SERVICES["rabbitmq"]["environment"]
    assert rabbit["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")
    uri = SERVICES["orders"]["environment"]["AMQP_URI"]
    assert re.match(r"amqp://\$\{RABBITMQ_USER:-\w+\}:\$\{RABBITMQ_PASSWORD:\?[^}]*\}@", uri)


def test_dockerfile_is_multi_stage_and_runs_as_non_root():
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", DOCKERFILE, re.M)
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)

    assert len(stages) >= 2
    assert "COPY --from=build /opt/venv /opt/venv" in DOCKERFILE
    assert users and users[-1] not in {"root", "0"}


def test_files_the_dockerfile_copies_exist():
    sources = [
        src
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE, re.M)
        for src in line.split()[:-1]
        if not src.startswith("--") and "*" not in src
    ]

    assert sources
    assert [src for src in sources if not (ROOT / src).exists()] == []


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert {".env", ".git", ".venv", ".run"} <= set(ignored)
