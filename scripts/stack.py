"""Local stack manager: `run` (foreground), `up` (background), `down`, `status`.

Starts the Mongo wire server (unless MONGO_URI points elsewhere), runs `micro-db setup`,
then the three Nameko workers, the two HTTP edges and the gateway, each logging to .run/logs.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from scripts import readiness
from scripts.readiness import port_open

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
PID_DIR = RUN_DIR / "pids"
LOG_DIR = RUN_DIR / "logs"
BIN = Path(sys.executable).parent

DEFAULTS = {
    "AMQP_URI": "amqp://guest:guest@localhost:5672/",
    "MONGO_URI": "mongodb://localhost:27017",
    "MONGO_DB": "micro",
    "RPC_TIMEOUT": "10",
    "P_VALUE": "100",
    "GATEWAY_PORT": "8000",
    "EDGE_V1_PORT": "8101",
    "EDGE_V2_PORT": "8102",
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
}
SERVICES = ("users_v1", "users_v2", "orders")


def stack_env() -> dict[str, str]:
    env = dict(os.environ)
    dotenv = ROOT / ".env"
    if dotenv.exists():
        for line in dotenv.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                env.setdefault(key.strip(), value.strip())
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    readiness.wait_until(check, what, LOG_DIR, timeout)


@dataclass
class Component:
    name: str
    argv: Callable[[dict[str, str]], list[str]]
    ready: Callable[[dict[str, str]], bool]
    enabled: Callable[[dict[str, str]], bool] = field(default=lambda env: True)


def _mongo_address(env: dict[str, str]) -> tuple[str, int]:
    parsed = urlparse(env["MONGO_URI"])
    return parsed.hostname or "localhost", parsed.port or 27017


def _local_mongo_wanted(env: dict[str, str]) -> bool:
    host, port = _mongo_address(env)
    # A MONGO_URI elsewhere, or a server already answering, is used as it is.
    return host in ("localhost", "127.0.0.1") and not port_open(host, port)


def _mongo_argv(env: dict[str, str]) -> list[str]:
    _, port = _mongo_address(env)
    data = RUN_DIR / "mongo"
    data.mkdir(parents=True, exist_ok=True)
    return [
        str(BIN / "nx-27017"), "--data-dir", str(data), "-p", str(port),
        "--log-file", str(LOG_DIR / "nx-27017.internal.log"),
        "--pid-file", str(RUN_DIR / "nx-27017.pid"),
    ]  # fmt: skip


def _workers_ready(env: dict[str, str]) -> bool:
    from nameko.standalone.rpc import ClusterRpcProxy

    try:
        with ClusterRpcProxy({"AMQP_URI": env["AMQP_URI"]}, timeout=2) as rpc:
            for service in SERVICES:
                getattr(rpc, service).ping()
        return True
    except Exception:
        return False


def _http_ok(port: str, path: str = "/health") -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status == 200
    except Exception:
        return False


def _edge(generation: str) -> Component:
    port_key = f"EDGE_{generation.upper()}_PORT"

    def argv(env: dict[str, str]) -> list[str]:
        env["USERS_SERVICE"] = f"users_{generation}"
        return [
            str(BIN / "gunicorn"), "-c", str(ROOT / "http_edge" / "gunicorn_conf.py"),
            "--bind", f"127.0.0.1:{env[port_key]}", "http_edge.app:create_app()",
        ]  # fmt: skip

    return Component(
        f"edge-{generation}",
        argv,
        lambda env: _http_ok(env[port_key]),
        enabled=lambda env: (ROOT / "http_edge" / "app.py").exists(),
    )


def _gateway_argv(env: dict[str, str]) -> list[str]:
    from kong.local_gateway import prepare_gateway

    return prepare_gateway(RUN_DIR, env)


COMPONENTS = [
    Component(
        "mongo",
        _mongo_argv,
        lambda env: port_open(*_mongo_address(env)),
        enabled=_local_mongo_wanted,
    ),
    *[
        Component(
            service,
            lambda env, s=service: [
                str(BIN / "nameko"),
                "run",
                "--config",
                str(ROOT / "config.yaml"),
                f"workers.{s}",
            ],  # fmt: skip
            lambda env: True,
        )
        for service in SERVICES
    ],
    _edge("v1"),
    _edge("v2"),
    Component(
        "gateway",
        _gateway_argv,
        lambda env: _http_ok(env["GATEWAY_PORT"], "/health"),
        enabled=lambda env: (ROOT / "kong" / "local_gateway.py").exists(),
    ),
]


def check_broker(env: dict[str, str]) -> None:
    parsed = urlparse(env["AMQP_URI"])
    host, port = parsed.hostname or "localhost", parsed.port or 5672
    if not port_open(host, port):
        raise SystemExit(
            f"stack: RabbitMQ is not reachable at {host}:{port}. `make run` starts a local "
            "rabbitmq-server when it is installed; otherwise set AMQP_URI."
        )


def setup_database(env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(BIN / "python"), "-m", "workers.db_commands", "setup"],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"stack: micro-db setup failed:\n{result.stderr}")
    print(f"  db      {result.stdout.strip().splitlines()[-1]}")


def start(component: Component, env: dict[str, str], detached: bool) -> subprocess.Popen | None:
    if not component.enabled(env):
        return None
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"{component.name}.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        component.argv(env), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=detached,
    )  # fmt: skip
    if detached:
        PID_DIR.mkdir(parents=True, exist_ok=True)
        (PID_DIR / f"{component.name}.pid").write_text(str(process.pid))
    print(f"  start   {component.name} (pid {process.pid}, log .run/logs/{component.name}.log)")
    return process


def check_settings(env: dict[str, str]) -> None:
    """Refuse a bad P_VALUE before anything starts (SPEC §5), with the renderer's message."""
    from kong.render import parse_p_value

    try:
        parse_p_value(env["P_VALUE"])
    except ValueError as error:
        raise SystemExit(f"stack: {error}") from None


def bring_up(env: dict[str, str], detached: bool) -> list[tuple[Component, subprocess.Popen]]:
    check_settings(env)
    check_broker(env)
    started: list[tuple[Component, subprocess.Popen]] = []
    try:
        for component in COMPONENTS:
            process = start(component, env, detached)
            if process is None:
                continue
            started.append((component, process))
            if component.name == "mongo":
                wait_until(lambda c=component: c.ready(env), "the Mongo wire server")
                setup_database(env)
            if component.name == SERVICES[-1]:
                wait_until(lambda: _workers_ready(env), "the Nameko workers")
            elif component.name != "mongo":
                wait_until(lambda c=component: c.ready(env), component.name)
            if process.poll() is not None:
                raise SystemExit(f"stack: {component.name} exited (see .run/logs)")
        if not any(c.name == "mongo" for c, _ in started):
            setup_database(env)
    except BaseException:
        stop_processes([p for _, p in started])
        raise
    return started


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in reversed(processes):
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def banner(env: dict[str, str]) -> None:
    print(
        f"\nstack is up: gateway http://localhost:{env['GATEWAY_PORT']}  "
        f"(P_VALUE={env['P_VALUE']}% of /users to v1)\n"
        f"  edges :{env['EDGE_V1_PORT']} (v1) :{env['EDGE_V2_PORT']} (v2); "
        "nameko shell: make shell; logs: .run/logs/"
    )


def cmd_run(env: dict[str, str]) -> int:
    started = bring_up(env, detached=False)
    banner(env)
    print("Ctrl-C stops everything started here.")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for component, process in started:
                if process.poll() is not None:
                    print(f"stack: {component.name} exited with {process.returncode}")
                    stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    print("\nstopping ...")
    stop_processes([p for _, p in started])
    return 0


def cmd_up(env: dict[str, str]) -> int:
    if any(PID_DIR.glob("*.pid")):
        print("stack: already up (make down first)")
        return 1
    bring_up(env, detached=True)
    banner(env)
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def cmd_down(env: dict[str, str]) -> int:
    pids = sorted(PID_DIR.glob("*.pid")) if PID_DIR.exists() else []
    for pid_file in pids:
        pid = int(pid_file.read_text())
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGTERM)
    for pid_file in pids:
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        print(f"  stop    {pid_file.stem} (pid {pid})")
        pid_file.unlink()
    if not pids:
        print("stack: nothing to stop")
    return 0


def cmd_status(env: dict[str, str]) -> int:
    for pid_file in sorted(PID_DIR.glob("*.pid")) if PID_DIR.exists() else []:
        pid = int(pid_file.read_text())
        print(f"  {pid_file.stem:10} pid {pid} {'running' if _pid_alive(pid) else 'DEAD'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("command", choices=["run", "up", "down", "status"])
    args = parser.parse_args(argv)
    env = stack_env()
    handlers = {"run": cmd_run, "up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        return handlers[args.command](env)
    except readiness.NotReady as error:
        raise SystemExit(f"stack: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
