"""SIGTERM to a real `nameko run` while it works: every in-flight RPC gets its reply and
runs once, every event being handled is acked once (neither lost nor handled again by the
instance that takes over). Without workers.runtime.graceful, nameko 2.14.1 closes the
connection before the workers finish: replies are lost and the broker redelivers.
"""

from __future__ import annotations

import collections
import os
import signal
import time
from pathlib import Path

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from launch.runner import Runner
from launch.spec import Component, RpcPing, child_env, nameko_worker
from tests.support.broker import queue_depth
from tests.support.polling import wait_until
from tests.support.processes import CHILD_ENV
from tests.support.slow_service import EVENT, SOURCE

pytestmark = pytest.mark.reliability

SLOW = "tests.support.slow_service:SlowUsers"
EVENT_QUEUE = f"evt-{SOURCE}-{EVENT}--slow.handle_tick"
ROUNDS = 2
IN_FLIGHT = 6
# Each call or event takes this long: SIGTERM lands well inside it, and nameko's consume
# loop (1 s drain timeout) would have closed the connection before the work ends.
PAUSE = 3.0


def ledger_counts(ledger: Path, kind: str) -> collections.Counter[str]:
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    return collections.Counter(line.split()[2] for line in lines if line.split()[1] == kind)


def worker(name: str, uri: str, ledger: Path, log_dir: Path) -> Component:
    env = child_env(
        os.environ, **CHILD_ENV, AMQP_URI=uri, SLOW_LEDGER=str(ledger), SLOW_SECONDS=str(PAUSE)
    )
    return nameko_worker(name, [SLOW], env, log_dir / f"{name}.log", RpcPing(uri, ("slow",)))


def terminate_and_take_over(runner: Runner, old: str, new: Component) -> int:
    """SIGTERM `old` (work in flight), start `new` at once, return old's exit code."""
    process = runner.processes.pop(old)
    process.send_signal(signal.SIGTERM)
    runner.start(new, timeout=60)  # consuming while old drains: a redelivery would reach it
    return process.wait(timeout=20)


def test_in_flight_rpc_calls_are_answered_once_across_sigterm(vhost, tmp_path) -> None:
    runner = Runner()
    ledger = tmp_path / "ledger"
    try:
        runner.start(worker("w0", vhost.uri, ledger, tmp_path), timeout=60)
        with ClusterRpcProxy({"AMQP_URI": vhost.uri}, timeout=15) as rpc:
            for round_ in range(ROUNDS):
                tokens = [f"r{round_}-{i}" for i in range(IN_FLIGHT)]
                replies = [rpc.slow.work.call_async(token) for token in tokens]
                time.sleep(0.5)
                in_flight = set(tokens) - set(ledger_counts(ledger, "rpc"))
                assert len(in_flight) == IN_FLIGHT, "every call must still be running"
                nxt = worker(f"w{round_ + 1}", vhost.uri, ledger, tmp_path)
                code = terminate_and_take_over(runner, f"w{round_}", nxt)
                assert [reply.result() for reply in replies] == tokens
                assert code == 0
            time.sleep(PAUSE + 1)  # a redelivered call would have run again by now
        counts = ledger_counts(ledger, "rpc")
        assert {token: n for token, n in counts.items() if n != 1} == {}
        assert len(counts) == ROUNDS * IN_FLIGHT
    finally:
        runner.stop_all()


def test_event_being_handled_at_sigterm_is_acked_once(vhost, tmp_path) -> None:
    runner = Runner()
    ledger = tmp_path / "ledger"
    dispatch = event_dispatcher({"AMQP_URI": vhost.uri})
    try:
        runner.start(worker("w0", vhost.uri, ledger, tmp_path), timeout=60)
        for round_ in range(ROUNDS):
            tokens = [f"e{round_}-{i}" for i in range(IN_FLIGHT)]
            for token in tokens:
                dispatch(SOURCE, EVENT, {"token": token})
            time.sleep(0.5)
            assert not set(tokens) & set(ledger_counts(ledger, "event")), "none handled yet"
            nxt = worker(f"w{round_ + 1}", vhost.uri, ledger, tmp_path)
            assert terminate_and_take_over(runner, f"w{round_}", nxt) == 0
            wait_until(
                lambda tokens=tokens: set(tokens) <= set(ledger_counts(ledger, "event")),
                timeout=15,
                what="every event handled",
            )
        time.sleep(PAUSE + 1)  # a redelivered event would have been handled again by now
        runner.stop_all()
        counts = ledger_counts(ledger, "event")
        assert {token: n for token, n in counts.items() if n != 1} == {}
        assert len(counts) == ROUNDS * IN_FLIGHT
        assert queue_depth(vhost.uri, EVENT_QUEUE) == 0
        assert queue_depth(vhost.uri, f"{EVENT_QUEUE}.dead-letter") == 0
    finally:
        runner.stop_all()
