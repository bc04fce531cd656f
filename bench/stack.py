"""The bench's own stack: nx-27017, a RabbitMQ vhost, workers, edges, gateway and baseline.

It mirrors scripts/stack.py (same argv, same gunicorn config, same rendered gateway) but on
its own ports, data dir and vhost, so it never collides with a developer's `make up`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from bench.config import ROOT, RUN_DIR, BenchConfig
from scripts import readiness
from scripts.readiness import port_open

BIN = Path(sys.executable).parent
LOG_DIR = RUN_DIR / "logs"
GUNICORN_CONF = ROOT / "http_edge" / "gunicorn_conf.py"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    readiness.wait_until(check, f"bench stack: {what}", LOG_DIR, timeout)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@dataclass
class BenchStack:
    config: BenchConfig
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    extra_orders: list[subprocess.Popen] = field(default_factory=list)
    launches: dict[str, tuple[list[str], dict[str, str] | None]] = field(default_factory=dict)

    # -- environment -------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        cfg = self.config
        env = dict(os.environ)
        env.update(
            AMQP_URI=cfg.amqp_uri,
            MONGO_URI=cfg.mongo_uri,
            MONGO_DB=cfg.mongo_db,
            RPC_TIMEOUT="10",
            P_VALUE="100",
            GATEWAY_PORT=str(cfg.gateway_port),
            EDGE_V1_PORT=str(cfg.edge_v1_port),
            EDGE_V2_PORT=str(cfg.edge_v2_port),
            PYTHONWARNINGS="ignore::DeprecationWarning",
            PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        return env

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
    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            argv,
            env=env or self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stopping it takes its children along
        )
        return process

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.processes[name] = self._spawn(name, argv, env)
        self.launches[name] = (argv, env)

    def restart(self, name: str) -> None:
        """Stop one component and start it again the same way (bench.ab swaps code)."""
        _stop_all([self.processes[name]])
        self.processes[name].wait(timeout=30)
        self._start(name, *self.launches[name])

    def _nameko_argv(self, service: str) -> list[str]:
        return [str(BIN / "nameko"), "run", "--config", str(ROOT / "config.yaml"), service]

    def _gunicorn_argv(self, port: int, app: str) -> list[str]:
        return [
            str(BIN / "gunicorn"),
            "-c",
            str(GUNICORN_CONF),
            "--bind",
            f"127.0.0.1:{port}",
            app,
        ]

    def up(self, progress: Callable[[str], None] = print) -> None:
        cfg = self.config
        for port in (cfg.gateway_port, cfg.edge_v1_port, cfg.edge_v2_port, cfg.baseline_port,
                     cfg.mongo_port):  # fmt: skip
            if port_open("127.0.0.1", port):
                raise RuntimeError(f"bench stack: port {port} is already in use")
        mongo_dir = RUN_DIR / "mongo"
        shutil.rmtree(mongo_dir, ignore_errors=True)  # every run starts from an empty database
        mongo_dir.mkdir(parents=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        progress("starting nx-27017 and the RabbitMQ vhost")
        self._start(
            "mongo",
            [str(BIN / "nx-27017"), "--data-dir", str(mongo_dir), "-p", str(cfg.mongo_port),
             "--log-file", str(LOG_DIR / "nx-27017.internal.log"),
             "--pid-file", str(RUN_DIR / "nx-27017.pid")],
        )  # fmt: skip
        self.reset_vhost()
        wait_until(lambda: port_open("127.0.0.1", cfg.mongo_port), "nx-27017")
        subprocess.run(
            [str(BIN / "python"), "-m", "workers.db_commands", "setup"],
            env=self.env, cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        progress("starting workers users_v1, users_v2, orders")
        for service in ("users_v1", "users_v2", "orders"):
            self._start(service, self._nameko_argv(f"workers.{service}"))
        wait_until(self.workers_ready, "nameko workers", timeout=90)
        progress("starting edges, baseline and gateway")
        for generation, port in (("v1", cfg.edge_v1_port), ("v2", cfg.edge_v2_port)):
            env = {**self.env, "USERS_SERVICE": f"users_{generation}"}
            self._start(
                f"edge-{generation}", self._gunicorn_argv(port, "http_edge.app:create_app()"), env
            )
        self._start(
            "baseline", self._gunicorn_argv(cfg.baseline_port, "bench.baseline_app:create_app()")
        )
        from kong.local_gateway import prepare_gateway

        self._start("gateway", prepare_gateway(RUN_DIR, self.env))
        for name, url in (
            ("edge-v1", f"http://127.0.0.1:{cfg.edge_v1_port}/health"),
            ("edge-v2", f"http://127.0.0.1:{cfg.edge_v2_port}/health"),
            ("baseline", f"{cfg.baseline_url}/health"),
            ("gateway", f"{cfg.gateway_url}/health"),
        ):
            wait_until(lambda u=url: http_ok(u), name)
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"bench stack: {name} exited (see {LOG_DIR}/{name}.log)")

    def workers_ready(self) -> bool:
        from nameko.standalone.rpc import ClusterRpcProxy

        try:
            with ClusterRpcProxy({"AMQP_URI": self.config.amqp_uri}, timeout=2) as rpc:
                for service in ("users_v1", "users_v2", "orders"):
                    getattr(rpc, service).ping()
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def add_orders_worker(self) -> None:
        """A second `nameko run workers.orders` process, for the scale-out scenario."""
        n = len(self.extra_orders) + 2
        self.extra_orders.append(self._spawn(f"orders-{n}", self._nameko_argv("workers.orders")))

    def remove_orders_workers(self) -> None:
        _stop_all(self.extra_orders)
        self.extra_orders.clear()

    def down(self) -> None:
        self.remove_orders_workers()
        _stop_all(list(self.processes.values()))
        self.processes.clear()
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
        for i, process in enumerate(self.extra_orders, start=2):
            try:
                trees[f"orders-{i}"] = [psutil.Process(process.pid)]
            except psutil.NoSuchProcess:
                continue
        rabbit = rabbitmq_process()
        if rabbit is not None:
            trees["rabbitmq (shared)"] = [rabbit]
        return trees

    def edge_worker_pids(self, name: str) -> list[int]:
        return [p.pid for p in psutil.Process(self.processes[name].pid).children()]


def rabbitmq_process() -> psutil.Process | None:
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "beam.smp":
            return process
    return None


def _stop_all(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    for process in reversed(processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
