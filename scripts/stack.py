"""Local stack manager: `run` (foreground), `up` (background), `down`, `status`, `restart`
(a rolling restart of what `up` started, a second instance of each up while the first drains).

Starts the components of `launch.spec.build_stack` in order: the Mongo wire server (unless
MONGO_URI points elsewhere), `micro-db setup`, the three Nameko workers, the two HTTP edges
and the gateway, each logging to .run/logs.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

from launch import broker_accounts, credentials, prometheus, rolling
from launch.runner import (
    NotReady,
    Runner,
    pid_alive,
    read_stop_policy,
    remove_pid_file,
    stop_process_groups,
)
from launch.settings import DEFAULTS, SettingsError, StackSettings
from launch.spec import ROOT, Component, PortOpen, build_stack

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

RUN_DIR = ROOT / ".run"
PID_DIR = RUN_DIR / "pids"
LOG_DIR = RUN_DIR / "logs"
__all__ = ["DEFAULTS", "main"]  # DEFAULTS: what tests/unit/test_stack.py starts from


def port_open(host: str, port: int) -> bool:
    return PortOpen(host, port)()


def check_settings(env: Mapping[str, str]) -> StackSettings:
    """Refuse a bad P_VALUE or port before anything starts (SPEC §5), with the renderer's
    message."""
    try:
        return StackSettings.from_env(env)
    except SettingsError as error:
        raise SystemExit(f"stack: {error}") from None


def with_credentials(settings: StackSettings) -> tuple[StackSettings, str]:
    """The first run creates the credentials store and the dev key (launch/credentials.py);
    every process gets AUTH_CREDENTIALS_FILE. Returns the settings and what to tell the user."""
    env, note = credentials.prepare(settings.env, RUN_DIR, settings.ports["gateway"])
    return StackSettings.from_env(env), note


def load_settings() -> StackSettings:
    """The environment, then .env, then DEFAULTS: what every process of the stack inherits."""
    try:
        return StackSettings.load(dotenv=ROOT / ".env")
    except SettingsError as error:
        raise SystemExit(f"stack: {error}") from None


def stack_env() -> dict[str, str]:
    return dict(load_settings().env)


def _local_mongo_wanted(env: Mapping[str, str]) -> bool:
    parsed = urlparse(env["MONGO_URI"])
    host, port = parsed.hostname or "localhost", parsed.port or 27017
    # A MONGO_URI elsewhere, or a server already answering, is used as it is.
    return host in ("localhost", "127.0.0.1") and not port_open(host, port)


def management_api(settings: StackSettings) -> str:
    """RABBIT_API_URI, else the management port of AMQP_URI's host with its credentials:
    AMQP_URI names the administrator, used only to create the components' accounts."""
    if settings.env.get("RABBIT_API_URI"):
        return settings.env["RABBIT_API_URI"]
    amqp = urlparse(settings.amqp_uri)
    login = f"{amqp.username}:{amqp.password}@" if amqp.username else ""
    return f"http://{login}{amqp.hostname or 'localhost'}:15672"


def provision_accounts(settings: StackSettings) -> dict[str, str]:
    """One RabbitMQ account per component on AMQP_URI's vhost (credentials generated under
    .run/credentials, reused): no process of the stack runs as the administrator."""
    host, port = settings.broker_address()
    vhost = unquote(urlparse(settings.amqp_uri).path[1:]) or "/"
    try:
        return broker_accounts.provision(
            management_api(settings), vhost, RUN_DIR, amqp_host=f"{host}:{port}"
        )
    except (requests.RequestException, RuntimeError, broker_accounts.AccountConflict) as error:
        raise SystemExit(
            f"stack: cannot create the RabbitMQ accounts through {host}'s management API "
            f"({error}). Enable rabbitmq_management (the bootstrap does) or set RABBIT_API_URI "
            "to an administrator's management URL."
        ) from None


def components(
    settings: StackSettings, uris: Mapping[str, str] | None = None
) -> tuple[Component, ...]:
    mongo = _local_mongo_wanted(settings.env)
    uris = provision_accounts(settings) if uris is None else uris
    stack = build_stack(
        settings,
        RUN_DIR,
        settings.ports,
        mongo=mongo,
        amqp_uris=uris,
        component_env=broker_accounts.component_env(uris),
    )
    return observed(settings, stack)


def prometheus_port(settings: StackSettings) -> int | None:
    """PROMETHEUS_PORT (default 9090; "off": none); None too without a prometheus binary."""
    raw = settings.env.get("PROMETHEUS_PORT", "9090").strip() or str(prometheus.DEFAULT_PORT)
    if raw == "off" or prometheus.binary() is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536 - len(prometheus.OFFSETS):
        raise SystemExit(f"stack: PROMETHEUS_PORT must be a TCP port or off, got {raw!r}.")
    return int(raw)


def observed(settings: StackSettings, stack: tuple[Component, ...]) -> tuple[Component, ...]:
    port = prometheus_port(settings)
    if port is None:
        return stack
    executable = prometheus.binary()
    assert executable is not None
    return prometheus.with_prometheus(stack, RUN_DIR, port, executable)


def check_broker(settings: StackSettings) -> None:
    host, port = settings.broker_address()
    if not port_open(host, port):
        raise SystemExit(
            f"stack: RabbitMQ is not reachable at {host}:{port}. `make run` starts a local "
            "rabbitmq-server when it is installed; otherwise set AMQP_URI."
        )


def announce(component: Component, started: subprocess.Popen | str) -> None:
    if isinstance(started, str):
        print(f"  db      {started.strip().splitlines()[-1]}")
    else:
        log = component.log.relative_to(ROOT)
        print(f"  start   {component.name} (pid {started.pid}, log {log})")


def bring_up(settings: StackSettings, detached: bool) -> Runner:
    check_broker(settings)
    # Every process in its own group, also in the foreground: Ctrl-C reaches only this
    # process, which stops them all in order (SIGTERM, then SIGKILL to the whole group).
    runner = Runner(pid_dir=PID_DIR if detached else None, announce=announce)
    runner.up(components(settings))
    return runner


def banner(settings: StackSettings) -> None:
    ports = settings.ports
    print(
        f"\nstack is up: gateway http://localhost:{ports['gateway']}  "
        f"(P_VALUE={settings.p_value}% of /users to v1)\n"
        f"  edges :{ports['edge-v1']} (v1) :{ports['edge-v2']} (v2); "
        "nameko shell: make shell; logs: .run/logs/"
    )
    port = prometheus_port(settings)
    if port is not None:
        print(f"  prometheus http://127.0.0.1:{port} (metrics on :{port + 1}..:{port + 5})")


def cmd_run() -> int:
    settings, note = with_credentials(load_settings())
    runner = bring_up(settings, detached=False)
    banner(settings)
    print(note)
    print("Ctrl-C stops everything started here.")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for name, returncode in runner.exited():
                print(f"stack: {name} exited with {returncode}")
                stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    print("\nstopping ...")
    runner.stop_all()
    return 0


def _pid_files() -> list[Path]:
    return sorted(PID_DIR.glob("*.pid")) if PID_DIR.exists() else []


def cmd_up() -> int:
    if _pid_files():
        print("stack: already up (make down first)")
        return 1
    settings, note = with_credentials(load_settings())
    bring_up(settings, detached=True)
    banner(settings)
    print(note)
    return 0


def cmd_down() -> int:
    pid_files = _pid_files()
    pids = [int(pid_file.read_text()) for pid_file in pid_files]
    running = [(pid, read_stop_policy(f)) for f, pid in zip(pid_files, pids, strict=True)]
    running = [(pid, policy) for pid, policy in running if pid_alive(pid)]
    stop_process_groups([pid for pid, _ in running], policies=[p for _, p in running])
    for pid_file, pid in zip(pid_files, pids, strict=True):
        print(f"  stop    {pid_file.stem} (pid {pid})")
        remove_pid_file(PID_DIR, pid_file.stem)
    if not pid_files:
        print("stack: nothing to stop")
    return 0


def cmd_status() -> int:
    for pid_file in _pid_files():
        pid = int(pid_file.read_text())
        print(f"  {pid_file.stem:10} pid {pid} {'running' if pid_alive(pid) else 'DEAD'}")
    return 0


def cmd_restart() -> int:
    """Rolling restart of the running stack: workers, edges, gateway (docs/operations.md)."""
    running = {f.stem: int(f.read_text()) for f in _pid_files()}
    dead = [name for name, pid in running.items() if not pid_alive(pid)]
    if not running or dead:
        print(f"stack: not (fully) up{': ' + ', '.join(dead) + ' dead' if dead else ''}")
        return 1
    settings, _ = with_credentials(load_settings())  # the store `up` made, as `up` passes it
    uris = provision_accounts(settings)
    stack = {c.name: c for c in components(settings, uris) if c.name in running}
    vhost = unquote(urlparse(settings.amqp_uri).path[1:]) or "/"
    broker = rolling.Broker(management_api(settings), vhost, uris[broker_accounts.OPERATOR])
    runner = Runner(pid_dir=PID_DIR, announce=announce)
    started = time.monotonic()

    def reload_gateway() -> None:
        from kong.local_gateway import reload_gateway

        reload_gateway(RUN_DIR, stack["gateway"].env)

    rolling.rolling_restart(
        runner, stack, running, broker, reload_gateway, lambda step: print(f"  restart {step}")
    )
    print(f"stack: rolling restart done in {time.monotonic() - started:.1f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("command", choices=["run", "up", "down", "status", "restart"])
    args = parser.parse_args(argv)
    handlers = {
        "run": cmd_run, "up": cmd_up, "down": cmd_down, "status": cmd_status,
        "restart": cmd_restart,
    }  # fmt: skip
    try:
        return handlers[args.command]()
    except NotReady as error:
        raise SystemExit(f"stack: {error}") from None
    except KeyboardInterrupt:  # during the start: what had started is stopped already
        print("\nstack: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
