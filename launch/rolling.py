"""Rolling restart of a running stack, one component at a time, never without a second
instance up: a worker's replacement consumes every queue of its service before the old one
gets SIGTERM (and drains: workers.runtime.graceful); an edge's gunicorn master forks new
workers on SIGHUP and retires the old ones gracefully on the same listener; the gateway's
nginx re-reads its config on a reload and its old workers finish their connections.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests
from kombu import Connection

from launch.runner import (
    Runner,
    StopPolicy,
    stop_process_groups,
    stop_processes,
    wait_until,
    write_pid_file,
)
from launch.spec import SERVICES, Component

Old = subprocess.Popen | int  # a process this launcher started, or one a pid file names


@dataclass(frozen=True)
class Broker:
    """Where to see who consumes what: the management API (queue names) and an AMQP account
    allowed to passive-declare them (live consumer counts; the API's lag by seconds)."""

    api: str
    vhost: str
    amqp_uri: str

    def queues_of(self, service: str) -> list[str]:
        """The queues `service` consumes: its RPC queue and its event handlers' queues."""
        response = requests.get(
            f"{self.api}/api/queues/{quote(self.vhost, safe='')}",
            params={"columns": "name"},
            timeout=10,
        )
        response.raise_for_status()
        names = [queue["name"] for queue in response.json()]
        handlers = [
            name for name in names
            if f"--{service}." in name and not name.endswith(".dead-letter")
        ]  # fmt: skip
        return [f"rpc-{service}", *handlers]

    def consumers(self, queues: Sequence[str]) -> dict[str, int]:
        with Connection(self.amqp_uri, connect_timeout=5) as connection:
            channel = connection.channel()
            return {
                queue: channel.queue_declare(queue=queue, passive=True).consumer_count
                for queue in queues
            }


def _stop_old(old: Old, policy: StopPolicy, timeout: float) -> None:
    if isinstance(old, subprocess.Popen):
        stop_processes([old], group=True, timeout=timeout, policies=[policy])
    else:
        stop_process_groups([old], timeout=timeout, policies=[policy])


def restart_worker(
    runner: Runner, component: Component, old: Old, broker: Broker, timeout: float = 60.0
) -> None:
    """Start a second `nameko run` of the service, wait until it consumes every queue the
    service consumes, then stop the old one (it finishes and acks what it holds)."""
    # Only queues someone consumes now: a queue left by an old deployment has no consumer.
    before = {q: n for q, n in broker.consumers(broker.queues_of(component.name)).items() if n}
    queues = list(before)
    new = runner.spawn(component)

    def consuming() -> bool:
        now = broker.consumers(queues)
        return all(now[queue] > before[queue] for queue in queues) and component.ready()

    try:
        wait_until(consuming, f"a second {component.name} consuming {', '.join(queues)}", timeout)
    except BaseException:  # the old instance keeps serving; the runner knows it again
        _stop_old(new, StopPolicy.of(component), runner.stop_timeout)
        if isinstance(old, subprocess.Popen):
            runner.processes[component.name] = old
        if runner.pid_dir is not None:
            write_pid_file(runner.pid_dir, component, old if isinstance(old, int) else old.pid)
        raise
    _stop_old(old, StopPolicy.of(component), runner.stop_timeout)


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        if f"PPid:\t{pid}" in lines:
            found.add(int(status.parent.name))
    return found


def reload_edge(component: Component, master: int, timeout: float = 60.0) -> None:
    """gunicorn's graceful reload: SIGHUP makes the master fork new workers (the app code
    re-imported) and SIGTERM the old ones, which finish in-flight requests; the listener
    never closes. Returns once no old worker is left and the edge answers."""
    old_workers = _children(master)
    os.kill(master, signal.SIGHUP)

    def replaced() -> bool:
        workers = _children(master)
        return bool(workers - old_workers) and not workers & old_workers and component.ready()

    wait_until(replaced, f"{component.name} to replace its workers", timeout)


def rolling_restart(
    runner: Runner,
    components: Mapping[str, Component],
    running: Mapping[str, Old],
    broker: Broker,
    reload_gateway: Callable[[], object],
    announce: Callable[[str], None] = lambda _: None,
) -> None:
    """Workers one by one, then each edge, then the gateway (`reload_gateway`)."""
    for name in SERVICES:
        announce(f"worker {name}")
        restart_worker(runner, components[name], running[name], broker)
    for name, component in components.items():
        if component.stage == "edges":
            announce(f"edge {name}")
            old = running[name]
            reload_edge(component, old.pid if isinstance(old, subprocess.Popen) else old)
    announce("gateway")
    reload_gateway()
