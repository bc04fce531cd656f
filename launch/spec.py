"""What each process of the stack is: argv, environment, ports, readiness check, log file.

`build_stack()` turns settings, a run directory and a port map into the ordered components
the local stack, the bench stack and the test tiers all start (with `launch.runner`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType

from launch.settings import PORT_VARIABLES, StackSettings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN_CONF = ROOT / "http_edge" / "gunicorn_conf.py"
NAMEKO_CONFIG = ROOT / "config.yaml"
SERVICES = ("users_v1", "users_v2", "orders")
EDGES: Mapping[str, str] = MappingProxyType({"edge-v1": "users_v1", "edge-v2": "users_v2"})
EDGE_APP = "http_edge.wsgi:app"
# The broker account a component logs in as where it is not its own name (both edges share
# one, launch/broker_accounts.py); the launcher's own readiness pings use "operator".
ACCOUNTS: Mapping[str, str] = MappingProxyType({"edge-v1": "edge", "edge-v2": "edge"})
LAUNCHER_ACCOUNT = "operator"
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


# -- readiness checks: small values, so a component's spec stays comparable and printable ---
@dataclass(frozen=True)
class PortOpen:
    host: str
    port: int

    def __call__(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False


@dataclass(frozen=True)
class HttpOk:
    url: str

    def __call__(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                return response.status == 200
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False


@dataclass(frozen=True)
class RpcPing:
    """Every named service answers `ping` over the broker."""

    amqp_uri: str
    services: tuple[str, ...]

    def __call__(self) -> bool:
        from nameko.standalone.rpc import ClusterRpcProxy

        amqp_log = logging.getLogger("amqp")
        level = amqp_log.level
        # A closing proxy's late publish confirm is logged as a warning: chatter, not news.
        amqp_log.setLevel(logging.ERROR)
        try:
            with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=2) as rpc:
                for service in self.services:
                    getattr(rpc, service).ping()
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False
        finally:
            amqp_log.setLevel(level)


@dataclass(frozen=True)
class AmqpConnect:
    """The broker accepts an AMQP connection (and login) at `amqp_uri`."""

    amqp_uri: str

    def __call__(self) -> bool:
        from kombu import Connection

        try:
            with Connection(self.amqp_uri, connect_timeout=1) as connection:
                connection.connect()
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False


@dataclass(frozen=True)
class Started:
    """No check of its own: running is enough (e.g. the edges' /ready waits for it)."""

    def __call__(self) -> bool:
        return True


@dataclass(frozen=True)
class Component:
    """One process: `prepare` (if any) runs just before it starts; a `job` runs to its end.

    `stop_signal` asks it to stop gracefully; with `leader_only` that signal goes to the
    process alone (it stops its own children, e.g. gunicorn drains first), never its group.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    log: Path
    ready: Callable[[], bool] = Started()
    ports: tuple[int, ...] = ()
    stage: str = ""
    prepare: Callable[[], object] | None = field(default=None, compare=False)
    job: bool = False
    stop_signal: int = signal.SIGTERM
    leader_only: bool = False


def child_env(base: Mapping[str, str], **extra: str) -> Mapping[str, str]:
    """A child's environment: `base`, the project importable, then `extra` on top."""
    env = {**base, "PYTHONPATH": str(ROOT) + os.pathsep + base.get("PYTHONPATH", "")}
    env.update(extra)
    return MappingProxyType(env)


# -- one builder per kind of process ----------------------------------------------------------
def nx_27017(
    run_dir: Path, port: int, env: Mapping[str, str], *, host: str = "127.0.0.1"
) -> Component:
    """The Mongo wire server; its data in run_dir/mongo, its own log beside the others."""
    data, logs = run_dir / "mongo", run_dir / "logs"
    argv = (
        str(BIN / "nx-27017"), "--data-dir", str(data), "-p", str(port),
        "--log-file", str(logs / "nx-27017.internal.log"),
        "--pid-file", str(run_dir / "nx-27017.pid"),
    )  # fmt: skip
    return Component(
        "mongo", argv, env, logs / "mongo.log", PortOpen(host, port), (port,), "database",
        prepare=partial(data.mkdir, parents=True, exist_ok=True),
    )  # fmt: skip


def db_setup(log: Path, env: Mapping[str, str]) -> Component:
    """`micro-db setup`: collections, validators and indexes (idempotent)."""
    argv = (str(BIN / "python"), "-m", "workers.db.commands", "setup")
    return Component("db-setup", argv, env, log, stage="setup", job=True)


def nameko_worker(
    name: str, modules: Sequence[str], env: Mapping[str, str], log: Path, ready: Callable[[], bool]
) -> Component:
    argv = (str(BIN / "nameko"), "run", "--config", str(NAMEKO_CONFIG), *modules)
    return Component(name, argv, env, log, ready, stage="workers")


def gunicorn_app(
    name: str,
    port: int,
    app: str,
    env: Mapping[str, str],
    log: Path,
    *,
    ready_path: str = "/health",
) -> Component:
    """A gunicorn master with the edge's gunicorn config (bench's baseline app uses it too)."""
    argv = (str(BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}", app)
    ready = HttpOk(f"http://127.0.0.1:{port}{ready_path}")
    # SIGTERM to the master only: it turns /ready 503, drains, then stops its workers.
    return Component(name, argv, env, log, ready, (port,), "edges", leader_only=True)


def gateway(run_dir: Path, port: int, env: Mapping[str, str]) -> Component:
    """nginx rendered from kong.yml; rendering (and `nginx -t`) happens just before it starts."""
    from kong.local_gateway import nginx_argv, prepare_gateway

    return Component(
        "gateway", tuple(nginx_argv(run_dir)), env, run_dir / "logs" / "gateway.log",
        HttpOk(f"http://127.0.0.1:{port}/health"), (port,), "gateway",
        prepare=partial(prepare_gateway, run_dir, env),
        stop_signal=signal.SIGQUIT, leader_only=True,  # nginx's graceful stop; TERM is fast
    )  # fmt: skip


def rabbitmq_node(base: Path, node: str, port: int, dist_port: int) -> Component:
    """A RabbitMQ node of its own (name, ports, mnesia dir, cookie under `base`), with no
    plugins, listening on 127.0.0.1:port with guest/guest."""
    env = {
        **os.environ,
        "HOME": str(base),  # the node and rabbitmqctl share a cookie created here
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": "/dev/null",  # not /etc/rabbitmq/rabbitmq-env.conf
    }

    def write_config() -> None:
        base.mkdir(parents=True, exist_ok=True)
        # Our own config: the system one binds 5672 and enables management on 15672.
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"
        )
        (base / "enabled_plugins").write_text("[].\n")

    return Component(
        f"rabbitmq-{node}", (str(RABBIT_BIN / "rabbitmq-server"),), MappingProxyType(env),
        base / "server.out", AmqpConnect(f"amqp://guest:guest@127.0.0.1:{port}/"), (port,),
        "broker", prepare=write_config,
    )  # fmt: skip


def build_stack(
    settings: StackSettings,
    run_dir: Path,
    ports: Mapping[str, int],
    amqp_uris: Mapping[str, str] | None = None,
    *,
    component_env: Mapping[str, Mapping[str, str]] | None = None,
    mongo: bool = True,
    extra: Sequence[Component] = (),
) -> tuple[Component, ...]:
    """The whole system in start order: Mongo wire server (unless `mongo` is False), database
    setup, the three workers, both edges (plus `extra`), the gateway.

    `ports` maps component names to ports ("mongo", "edge-v1", "edge-v2", "gateway").
    `amqp_uris` maps broker accounts to URIs (`broker_accounts.provision()`'s result): a
    component uses its account's (see ACCOUNTS), else settings.amqp_uri. `component_env`
    adds variables per account (`broker_accounts.component_env()`: the DECLARE_* flags).
    """
    uris, more_env = amqp_uris or {}, component_env or {}
    logs = run_dir / "logs"
    # Only the processes that talk to the broker get an AMQP_URI, each its own if given.
    shared = {key: value for key, value in settings.env.items() if key != "AMQP_URI"}
    base = child_env(shared, **{key: str(ports[name]) for name, key in PORT_VARIABLES.items()})
    # Each component's spans go to run_dir/traces/<name>.jsonl (common/tracing.py).
    base = child_env(base, TRACES_DIR=base.get("TRACES_DIR") or str(run_dir / "traces"))
    launcher_uri = uris.get(LAUNCHER_ACCOUNT, settings.amqp_uri)

    def env(name: str, **more: str) -> Mapping[str, str]:
        account = ACCOUNTS.get(name, name)
        uri = uris.get(account, settings.amqp_uri)
        own = {"AMQP_URI": uri, "OTEL_SERVICE_NAME": name}
        return MappingProxyType({**base, **own, **more_env.get(account, {}), **more})

    components: list[Component] = []
    if mongo:
        components.append(nx_27017(run_dir, ports["mongo"], base, host=settings.mongo_host))
    components.append(db_setup(logs / "db-setup.log", base))
    for service in SERVICES:
        ping = RpcPing(launcher_uri, (service,))
        components.append(
            nameko_worker(
                service, [f"workers.{service}"], env(service), logs / f"{service}.log", ping
            )
        )
    for name, users in EDGES.items():
        edge_env = env(name, USERS_SERVICE=users)
        components.append(
            gunicorn_app(name, ports[name], EDGE_APP, edge_env, logs / f"{name}.log")
        )
    components.extend(extra)
    components.append(gateway(run_dir, ports["gateway"], base))
    return tuple(components)
