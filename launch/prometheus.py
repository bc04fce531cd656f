"""A local Prometheus for the stack: its scrape config generated from the launch spec, and
the workers' and edges' metrics ports it scrapes (docs/observability.md)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType

import yaml

from launch.spec import EDGES, ROOT, SERVICES, Component, HttpOk

DEFAULT_PORT = 9090
# rabbitmq_prometheus (enabled by the bootstrap); per-object: the `queue` label the DLQ and
# no-consumer alerts need.
RABBITMQ_METRICS = ("127.0.0.1:15692", "/metrics/per-object")
RULES = ROOT / "deploy" / "prometheus" / "rules"
# Each process's /metrics sits just above PROMETHEUS_PORT: one setting moves them all.
# The gateway's kong_* series: its Lua status listener (kong/nginx.py), 127.0.0.1 only.
GATEWAY = "gateway"
OFFSETS: Mapping[str, int] = MappingProxyType(
    {name: index for index, name in enumerate((*SERVICES, *EDGES, GATEWAY), start=1)}
)
PORT_VARIABLE: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(SERVICES, "METRICS_PORT"),
        **dict.fromkeys(EDGES, "EDGE_METRICS_PORT"),
        GATEWAY: "GATEWAY_STATUS_PORT",
    }
)


def binary() -> str | None:
    """Debian's prometheus (the bootstrap installs it for promtool)."""
    return shutil.which("prometheus")


def metrics_ports(prometheus_port: int) -> dict[str, int]:
    return {name: prometheus_port + offset for name, offset in OFFSETS.items()}


def scrape_config(prometheus_port: int, rules: Path = RULES) -> dict:
    """One job per kind (workers, edge), one target per component, labelled by its name."""
    ports = metrics_ports(prometheus_port)

    def job(name: str, components: Iterable[str]) -> dict:
        return {
            "job_name": name,
            "static_configs": [
                {"targets": [f"127.0.0.1:{ports[c]}"], "labels": {"component": c}}
                for c in components
            ],
        }

    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{prometheus_port}"]}],
            },
            job("workers", SERVICES),
            job("edge", EDGES),
            job("gateway", (GATEWAY,)),
            {
                "job_name": "rabbitmq",
                "metrics_path": RABBITMQ_METRICS[1],
                "static_configs": [{"targets": [RABBITMQ_METRICS[0]]}],
            },
        ],
    }


def write_config(run_dir: Path, prometheus_port: int) -> Path:
    path = run_dir / "prometheus" / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(scrape_config(prometheus_port), sort_keys=False))
    return path


def prometheus(run_dir: Path, port: int, executable: str) -> Component:
    """Prometheus on 127.0.0.1:port; config and data under run_dir/prometheus."""
    base = run_dir / "prometheus"
    argv = (
        executable,
        f"--config.file={base / 'prometheus.yml'}",
        f"--storage.tsdb.path={base / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{port}",
    )
    return Component(
        "prometheus", argv, {}, run_dir / "logs" / "prometheus.log",
        HttpOk(f"http://127.0.0.1:{port}/-/ready"), (port,), "observability",
        prepare=partial(write_config, run_dir, port),
    )  # fmt: skip


def with_prometheus(
    components: Iterable[Component], run_dir: Path, port: int, executable: str
) -> tuple[Component, ...]:
    """`components` with each worker, edge and the gateway serving /metrics on its port, then
    Prometheus."""
    from kong.local_gateway import prepare_gateway

    ports = metrics_ports(port)
    served = []
    for component in components:
        if component.name in ports:
            extra = {PORT_VARIABLE[component.name]: str(ports[component.name])}
            env = MappingProxyType({**component.env, **extra})
            component = dataclasses.replace(component, env=env)
            if component.name == GATEWAY:  # its conf is rendered from env just before start
                component = dataclasses.replace(
                    component, prepare=partial(prepare_gateway, run_dir, env)
                )
        served.append(component)
    return (*served, prometheus(run_dir, port, executable))
