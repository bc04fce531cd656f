"""The bench's own stack: the launch spec's components plus the baseline app, on the bench's
ports, data dir (.run/bench) and vhost, so it never collides with a developer's `make up`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.config import ROOT, RUN_DIR, BenchConfig
from launch import runner as launch_runner
from launch.runner import Runner
from launch.spec import (
    BIN,
    NAMEKO_CONFIG,
    SERVICES,
    Component,
    HttpOk,
    PortOpen,
    RpcPing,
    build_stack,
    child_env,
    gunicorn_app,
    nameko_worker,
)

__all__ = ["BIN", "ROOT", "BenchStack", "http_ok", "rabbitmq_process", "wait_until"]
LOG_DIR = RUN_DIR / "logs"
BASELINE_APP = "bench.baseline_app:create_app()"
PEER = "bench.nameko_peer:NamekoGatewayPeer"
# Budget mode (bench.budget): the same edge app and users_v1 service, wrapped by the probes.
PROBED = {"edge-v1": "bench.probes.edge:app", "users_v1": "bench.probes.worker:ProbedUsersV1"}
PROBE_DIR = RUN_DIR / "probes"
STAGE_MESSAGES = {
    "database": "starting nx-27017 and the RabbitMQ vhost",
    "workers": "starting workers users_v1, users_v2, orders",
    "edges": "starting edges, baseline and gateway",
}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    launch_runner.wait_until(check, f"bench stack: {what} (logs: {LOG_DIR})", timeout)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def write_peer_config(path: Path, port: int) -> None:
    """The peer's nameko config: the workers' broker settings, its web port, quiet logs
    (nameko-examples' gateway logs nothing per request)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "AMQP_URI: ${AMQP_URI}\n"
        f"WEB_SERVER_ADDRESS: 127.0.0.1:{port}\n"
        "serializer: json\n"
        "max_workers: ${MAX_WORKERS:10}\n"
        "LOGGING:\n  version: 1\n  disable_existing_loggers: false\n"
        "  root: {level: WARNING}\n"
    )


def nameko_peer(config: BenchConfig, env: dict[str, str] | Any) -> Component:
    """`nameko run` of the Nameko-native gateway peer on its own port."""
    conf = RUN_DIR / "nameko_peer.yaml"
    argv = (str(BIN / "nameko"), "run", "--config", str(conf), PEER)
    return Component(
        "peer", argv, env, LOG_DIR / "peer.log", HttpOk(f"{config.peer_url}/health"),
        (config.peer_port,), "edges", prepare=partial(write_peer_config, conf, config.peer_port),
    )  # fmt: skip


def with_probes(component: Component) -> Component:
    """edge-v1 / users_v1 started through bench.probes (budget mode); others unchanged."""
    target = PROBED.get(component.name)
    if target is None:
        return component
    env = {**component.env, "BENCH_PROBE_DIR": str(PROBE_DIR)}
    if component.name == "users_v1":
        argv = (str(BIN / "nameko"), "run", "--config", str(NAMEKO_CONFIG), target)
    else:
        argv = (*component.argv[:-1], target)
    return dataclasses.replace(component, argv=argv, env=env)


@dataclass
class BenchStack:
    config: BenchConfig
    # Budget mode: timestamps from edge-v1 and users_v1 (bench.probes), no peer.
    probes: bool = False
    # Stopping a process group takes gunicorn's and nginx's workers along.
    runner: Runner = field(default_factory=lambda: Runner(ready_timeout=90, stop_timeout=15))
    extra_orders: Runner = field(default_factory=lambda: Runner(stop_timeout=15))

    @property
    def processes(self) -> dict:
        return self.runner.processes

    def components(self) -> tuple[Component, ...]:
        settings = self.config.stack_settings()
        ports = {**settings.ports, "baseline": self.config.baseline_port}
        baseline = gunicorn_app(
            "baseline", ports["baseline"], BASELINE_APP, child_env(settings.env),
            LOG_DIR / "baseline.log",
        )  # fmt: skip
        if self.probes:
            stack = build_stack(settings, RUN_DIR, ports, extra=[baseline])
            return tuple(with_probes(component) for component in stack)
        peer = nameko_peer(self.config, child_env(settings.env))
        return build_stack(settings, RUN_DIR, ports, extra=[baseline, peer])

    # -- RabbitMQ vhost ------------------------------------------------------------------
    def reset_vhost(self) -> None:
        """A fresh vhost per run: no queue or message left by an earlier bench."""
        api, vhost = self.config.management_url, self.config.vhost
        auth = ("guest", "guest")
        requests.delete(f"{api}/vhosts/{vhost}", auth=auth, timeout=10)
        requests.put(f"{api}/vhosts/{vhost}", auth=auth, timeout=10).raise_for_status()
        requests.put(
            f"{api}/permissions/{vhost}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            auth=auth,
            timeout=10,
        ).raise_for_status()

    def delete_vhost(self) -> None:
        api, vhost = self.config.management_url, self.config.vhost
        with contextlib.suppress(requests.RequestException):
            requests.delete(f"{api}/vhosts/{vhost}", auth=("guest", "guest"), timeout=10)

    # -- processes -----------------------------------------------------------------------
    def _start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Start a process that is not part of the spec (bench.relay's echo service)."""
        env = env or child_env(self.config.stack_settings().env)
        self.runner.spawn(Component(name, tuple(argv), env, LOG_DIR / f"{name}.log"))

    def restart(self, name: str) -> None:
        """Stop one component and start it again the same way (bench.ab swaps code)."""
        self.runner.restart(name)

    def up(self, progress: Callable[[str], None] = print) -> None:
        components = self.components()
        for port in (port for component in components for port in component.ports):
            if PortOpen("127.0.0.1", port)():
                raise RuntimeError(f"bench stack: port {port} is already in use")
        # Every run starts from an empty database.
        shutil.rmtree(RUN_DIR / "mongo", ignore_errors=True)
        self.reset_vhost()
        # wrk's Lua scripts send it (bench/lua); the baseline ignores it.
        os.environ["BENCH_API_KEY"] = self.config.api_key()

        def stage(name: str) -> None:
            if name in STAGE_MESSAGES:
                progress(STAGE_MESSAGES[name])

        self.runner.up(components, on_stage=stage)

    def workers_ready(self) -> bool:
        return RpcPing(self.config.amqp_uri, SERVICES)()

    def add_orders_worker(self) -> None:
        """A second `nameko run workers.orders` process, for the scale-out scenario."""
        name = f"orders-{len(self.extra_orders.processes) + 2}"
        env = child_env(self.config.stack_settings().env)
        ready = RpcPing(self.config.amqp_uri, ("orders",))
        self.extra_orders.spawn(
            nameko_worker(name, ["workers.orders"], env, LOG_DIR / f"{name}.log", ready)
        )

    def remove_orders_workers(self) -> None:
        self.extra_orders.stop_all()

    def down(self) -> None:
        self.remove_orders_workers()
        self.runner.stop_all()
        self.delete_vhost()

    # -- introspection -------------------------------------------------------------------
    def process_trees(self) -> dict[str, list[psutil.Process]]:
        """Each component's processes (gunicorn and nginx masters with their workers)."""
        trees: dict[str, list[psutil.Process]] = {}
        for name, process in self.processes.items():
            try:
                root = psutil.Process(process.pid)
                trees[name] = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        for name, process in self.extra_orders.processes.items():
            try:
                trees[name] = [psutil.Process(process.pid)]
            except psutil.NoSuchProcess:
                continue
        rabbit = rabbitmq_process()
        if rabbit is not None:
            trees["rabbitmq (shared)"] = [rabbit]
        return trees

    def edge_worker_pids(self, name: str) -> list[int]:
        return [p.pid for p in psutil.Process(self.processes[name].pid).children()]


def rabbitmq_process(port: int = 5672) -> psutil.Process | None:
    """The broker the bench uses: the beam.smp listening on `port`, not just any Erlang VM
    (others' private test nodes come and go; one that exits mid-run made CPU negative)."""
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "beam.smp":
            continue
        try:
            listening = process.net_connections(kind="tcp")
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in listening):
            return process
    return None
