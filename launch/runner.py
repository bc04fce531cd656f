"""The one process runner: start components (logs to their files), wait until they answer,
stop them with SIGTERM and then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from launch.spec import ROOT, Component

# Outlasts a draining edge: EDGE_DRAIN_SECONDS (1) plus the slowest RPC (RPC_TIMEOUT, 10).
STOP_TIMEOUT = 20.0


class NotReady(RuntimeError):
    """A started component did not answer in time, or exited while it was awaited."""


def wait_until(
    check: Callable[[], bool], what: str, timeout: float, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise NotReady(f"{what} did not become ready within {timeout:.0f}s")
        time.sleep(interval)


def _signal(pid: int, sig: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig) if group else os.kill(pid, sig)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class StopPolicy:
    """How a process started by another launcher asks to be stopped (`make down`)."""

    sig: int = signal.SIGTERM
    leader_only: bool = False

    @classmethod
    def of(cls, component: Component) -> StopPolicy:
        return cls(component.stop_signal, component.leader_only)

    def dump(self) -> str:
        return f"{signal.Signals(self.sig).name} {'leader' if self.leader_only else 'group'}"

    @classmethod
    def load(cls, text: str) -> StopPolicy:
        name, scope = text.split()
        return cls(signal.Signals[name], scope == "leader")


def stop_processes(
    processes: Sequence[subprocess.Popen],
    *,
    group: bool,
    sig: int = signal.SIGTERM,
    timeout: float = STOP_TIMEOUT,
    policies: Sequence[StopPolicy] = (),
) -> None:
    """Signal all (last started first), then wait for each; SIGKILL whoever lingers (its
    whole group if `group`). `policies[i]`, if given, is how process i asks to stop."""
    asks = dict(zip((p.pid for p in processes), policies, strict=False))
    alive = [p for p in reversed(processes) if p.poll() is None]
    for process in alive:
        policy = asks.get(process.pid, StopPolicy(sig))
        _signal(process.pid, policy.sig, group and not policy.leader_only)
    for process in alive:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal(process.pid, signal.SIGKILL, group)
            process.wait(timeout=10)
        if group and asks.get(process.pid, StopPolicy()).leader_only:
            _signal(process.pid, signal.SIGKILL, group)  # a child it left behind


def stop_process_groups(
    pids: Sequence[int], timeout: float = STOP_TIMEOUT, policies: Sequence[StopPolicy] = ()
) -> None:
    """stop_processes() for groups this process did not start (e.g. `make down`)."""
    asks = [*policies, *[StopPolicy()] * (len(pids) - len(policies))]
    for pid, policy in zip(pids, asks, strict=True):
        _signal(pid, policy.sig, group=not policy.leader_only)
    for pid, policy in zip(pids, asks, strict=True):
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid) or policy.leader_only:  # lingering, or a child left behind
            _signal(pid, signal.SIGKILL, group=True)


def write_pid_file(pid_dir: Path, component: Component, pid: int) -> None:
    """`<name>.pid` holds the pid; `<name>.stop` the stop policy where it is not the default."""
    pid_dir.mkdir(parents=True, exist_ok=True)
    (pid_dir / f"{component.name}.pid").write_text(str(pid))
    policy, stop_file = StopPolicy.of(component), pid_dir / f"{component.name}.stop"
    if policy == StopPolicy():
        stop_file.unlink(missing_ok=True)
    else:
        stop_file.write_text(policy.dump())


def read_stop_policy(pid_file: Path) -> StopPolicy:
    stop_file = pid_file.with_suffix(".stop")
    return StopPolicy.load(stop_file.read_text()) if stop_file.exists() else StopPolicy()


def remove_pid_file(pid_dir: Path, name: str) -> None:
    for suffix in (".pid", ".stop"):
        (pid_dir / f"{name}{suffix}").unlink(missing_ok=True)


class Runner:
    """Starts components and remembers them by name, to stop or restart them later.

    `new_session` gives each process its own group (stopping it takes its children along;
    a terminal's Ctrl-C does not reach it); `pid_dir` records `<name>.pid` files;
    `announce` hears of each process started and each job's output.
    """

    def __init__(
        self,
        *,
        new_session: bool = True,
        pid_dir: Path | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = STOP_TIMEOUT,
        announce: Callable[[Component, subprocess.Popen | str], None] | None = None,
    ) -> None:
        self.new_session = new_session
        self.pid_dir = pid_dir
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.announce = announce
        self.components: dict[str, Component] = {}
        self.processes: dict[str, subprocess.Popen] = {}

    # -- starting ------------------------------------------------------------------------
    def spawn(self, component: Component) -> subprocess.Popen:
        """Start one process, logging to its file, without waiting for it."""
        if component.prepare is not None:
            component.prepare()
        component.log.parent.mkdir(parents=True, exist_ok=True)
        with open(component.log, "ab") as log:  # the child keeps its own copy of the fd
            process = subprocess.Popen(
                component.argv, env=dict(component.env), cwd=ROOT, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=self.new_session,
            )  # fmt: skip
        self.components[component.name] = component
        self.processes[component.name] = process
        if self.pid_dir is not None:
            write_pid_file(self.pid_dir, component, process.pid)
        if self.announce is not None:
            self.announce(component, process)
        return process

    def run_job(self, component: Component) -> str:
        """Run a one-shot component to its end; its output goes to its log and is returned."""
        result = subprocess.run(
            component.argv, env=dict(component.env), cwd=ROOT, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        component.log.parent.mkdir(parents=True, exist_ok=True)
        with open(component.log, "a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise NotReady(f"{component.name} failed:\n{result.stderr}")
        if self.announce is not None:
            self.announce(component, result.stdout)
        return result.stdout

    def start(self, *components: Component, timeout: float | None = None) -> None:
        """Start them all, then wait until each is ready (jobs: run each to its end)."""
        for component in components:
            if component.job:
                self.run_job(component)
            else:
                self.spawn(component)
        for component in components:
            if not component.job:
                self.wait_ready(component.name, timeout)

    def up(
        self,
        components: Iterable[Component],
        timeout: float | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> None:
        """Start stage after stage (a stage: consecutive components with the same `stage`);
        if anything fails, stop what this runner started and re-raise."""
        try:
            for name, stage in groupby(components, key=lambda c: c.stage):
                if on_stage is not None:
                    on_stage(name)
                self.start(*stage, timeout=timeout)
        except BaseException:
            self.stop_all()
            raise

    def wait_ready(self, name: str, timeout: float | None = None) -> None:
        component, process = self.components[name], self.processes[name]

        def ready() -> bool:
            if process.poll() is not None:
                raise NotReady(
                    f"{name} exited with {process.returncode} (see {component.log}):\n"
                    + self.log_tail(name)
                )
            return component.ready()

        limit = self.ready_timeout if timeout is None else timeout
        wait_until(ready, f"{name} (see {component.log})", limit)

    # -- stopping ------------------------------------------------------------------------
    def stop(self, *names: str, sig: int | None = None) -> None:
        """Stop each gracefully (its own stop signal), or with `sig` sent to its group."""
        names = tuple(name for name in names if name in self.processes)
        policies = [
            StopPolicy.of(self.components[name]) if sig is None else StopPolicy(sig)
            for name in names
        ]
        processes = [self.processes.pop(name) for name in names]
        stop_processes(
            processes, group=self.new_session, timeout=self.stop_timeout, policies=policies
        )
        for name in names:
            if self.pid_dir is not None:
                remove_pid_file(self.pid_dir, name)

    def stop_all(self) -> None:
        self.stop(*self.processes)

    def restart(self, name: str, timeout: float | None = None) -> None:
        """Stop one component and start it again from the same spec."""
        self.stop(name)
        self.start(self.components[name], timeout=timeout)

    # -- looking -------------------------------------------------------------------------
    def log_tail(self, name: str, chars: int = 3000) -> str:
        log = self.components[name].log
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    def exited(self) -> list[tuple[str, int]]:
        return [(n, p.returncode) for n, p in self.processes.items() if p.poll() is not None]
