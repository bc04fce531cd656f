"""docker/: the compose file's shape and the Dockerfile's rules (Docker can't run here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from common import defaults
from kong.checks import deck_validate
from kong.render import main as kong_render
from launch import broker_accounts

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker" / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
RABBITMQ_NODES = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")
RABBITMQ_UP = {node: "service_healthy" for node in RABBITMQ_NODES}
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
        *RABBITMQ_NODES,
        "rabbitmq-definitions",
        "db-setup",
        *WORKERS,
        "edge-credentials",
        "edge-v1",
        "edge-v2",
        "kong-config",
        "kong",
        "prometheus",
        "grafana",
        "otel-collector",
        "jaeger",
    }


APP_COMPONENTS = {**{name: name.replace("-", "_") for name in WORKERS}, "edge-v1": "edge-v1",
                  "edge-v2": "edge-v2"}  # fmt: skip


@pytest.mark.parametrize(("service", "trace_name"), APP_COMPONENTS.items())
def test_every_edge_and_worker_sends_its_spans_to_the_collector_under_its_own_name(
    service, trace_name
):
    env = SERVICES[service]["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["OTEL_SERVICE_NAME"] == trace_name
    assert env["TRACE_SAMPLE_RATIO"] == "${TRACE_SAMPLE_RATIO:-1}"


def test_kong_is_rendered_with_the_same_sampling_ratio():
    # kong-render sets the opentelemetry plugin's sampling_rate from it (kong/render.py).
    env = SERVICES["kong-config"]["environment"]
    assert env["TRACE_SAMPLE_RATIO"] == SERVICES["edge-v1"]["environment"]["TRACE_SAMPLE_RATIO"]


def test_the_collector_receives_otlp_http_and_hands_traces_to_jaeger():
    collector = SERVICES["otel-collector"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in collector["volumes"]}
    config_path = (ROOT / "docker" / mounted["/etc/otelcol/collector.yml"]).resolve()
    config = yaml.safe_load(config_path.read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert config["exporters"][pipeline["exporters"][0]]["endpoint"] == "jaeger:4317"
    assert set(pipeline["processors"]) <= set(config["processors"])
    jaeger = SERVICES["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert jaeger["ports"] == ["127.0.0.1:${JAEGER_PORT:-16686}:16686"]  # loopback only


@pytest.mark.parametrize(("service", "module"), WORKERS.items())
def test_workers_run_nameko_and_can_be_scaled(service, module):
    worker = SERVICES[service]

    assert worker["command"] == ["nameko", "run", "--config", "config.yaml", module]
    assert "container_name" not in worker and "ports" not in worker  # --scale needs both absent
    assert depends(service) == {**RABBITMQ_UP, "db-setup": "service_completed_successfully"}


@pytest.mark.parametrize("service", ["mongo", *RABBITMQ_NODES, "edge-v1", "edge-v2", "kong"])
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
    # Credentials: a copy of the store alone (no private key), read-only, before start.
    assert edge["environment"]["AUTH_CREDENTIALS_FILE"] == "/run/auth/credentials.json"
    assert edge["volumes"] == ["edge-credentials:/run/auth:ro"]
    assert depends(service)["edge-credentials"] == "service_completed_successfully"
    job = SERVICES["edge-credentials"]
    assert job["restart"] == "no"
    assert "/host-auth/credentials.json" in " ".join(job["command"])
    assert "issuer-private" not in " ".join(job["command"])


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
    assert job["environment"]["P_VALUE"] == f"${{P_VALUE:-{defaults.P_VALUE}}}"
    output = tmp_path / "kong.yml"

    assert kong_render([*argv[1:-1], str(output)], env={"P_VALUE": "35"}) == 0

    deck_validate(output)
    text = output.read_text()
    assert 'target: "edge-v1:8000"\n        weight: 35' in text
    assert 'target: "edge-v2:8000"\n        weight: 65' in text


def test_no_secret_is_committed():
    assert "guest" not in COMPOSE_TEXT
    for node in RABBITMQ_NODES:  # no default user, no password; the cookie comes from .env
        assert SERVICES[node]["environment"] == {
            "RABBITMQ_ERLANG_COOKIE": "${RABBITMQ_ERLANG_COOKIE:?set it in .env}"
        }
    passwords = SERVICES["rabbitmq-definitions"]["environment"]
    assert set(passwords) == {
        broker_accounts.password_variable(c) for c in broker_accounts.COMPONENTS
    }
    assert all(value == f"${{{name}:?set it in .env}}" for name, value in passwords.items())


BROKER_ACCOUNTS = {"users-v1": "users_v1", "users-v2": "users_v2", "orders": "orders",
                   "edge-v1": "edge", "edge-v2": "edge"}  # fmt: skip


@pytest.mark.parametrize(("service", "account"), BROKER_ACCOUNTS.items())
def test_every_service_uses_its_own_broker_account(service, account):
    env = SERVICES[service]["environment"]
    variable = broker_accounts.password_variable(account)

    # Every node of the cluster, in kombu's failover form.
    assert env["AMQP_URI"] == ";".join(
        f"amqp://{account}:${{{variable}:?set it in .env}}@{node}:5672/" for node in RABBITMQ_NODES
    )
    # Workers: the definitions declared the shared exchanges; their accounts may not.
    expected = broker_accounts.component_env({account: env["AMQP_URI"]})[account]
    assert {key: env[key] for key in expected} == expected


def test_the_broker_loads_the_definitions_the_job_renders(tmp_path):
    job = SERVICES["rabbitmq-definitions"]
    output = Path(job["command"][-1])
    job_volume, job_dir = next(v.split(":") for v in job["volumes"])
    conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    loaded = re.search(r"^load_definitions = (\S+)$", conf, re.M).group(1)

    assert output.parent == Path(job_dir)
    for node in RABBITMQ_NODES:
        mounts = dict(v.split(":")[:2] for v in SERVICES[node]["volumes"])
        assert Path(loaded) == Path(mounts[job_volume]) / output.name
        assert mounts["../deploy/rabbitmq/rabbitmq.conf"].startswith("/etc/rabbitmq/conf.d/")
        assert depends(node) == {"rabbitmq-definitions": "service_completed_successfully"}
    env = {name: f"pw-{name}" for name in job["environment"]}
    assert broker_accounts.main([*job["command"][3:-1], str(tmp_path / output.name)], env) == 0
    rendered = json.loads((tmp_path / output.name).read_text())
    granted = {p.pop("user"): p for p in rendered["permissions"] if p.pop("vhost") == "/"}
    assert granted == {c: a.permissions() for c, a in broker_accounts.accounts().items()}


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


def test_the_broker_is_a_three_node_cluster_of_named_nodes_with_own_data():
    conf = (ROOT / "deploy" / "rabbitmq" / "cluster.conf").read_text()
    listed = re.findall(
        r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", conf, re.M
    )
    assert "cluster_formation.peer_discovery_backend = classic_config" in conf
    assert listed == list(RABBITMQ_NODES)
    data = set()
    for node in RABBITMQ_NODES:
        service = SERVICES[node]
        mounts = dict(v.split(":")[:2] for v in service["volumes"])
        assert service["hostname"] == node  # the node name rabbit@<hostname> is stable
        assert mounts["../deploy/rabbitmq/cluster.conf"].startswith("/etc/rabbitmq/conf.d/")
        data.add(next(v for v, target in mounts.items() if target == "/var/lib/rabbitmq"))
    assert len(data) == 3 and data <= set(COMPOSE["volumes"])
    assert "ports" in SERVICES["rabbitmq-1"]  # management UI on one node only
    assert not any("ports" in SERVICES[node] for node in RABBITMQ_NODES[1:])
