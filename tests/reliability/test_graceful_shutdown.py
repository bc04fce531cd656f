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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from launch.runner import Runner
from launch.spec import Component, PortOpen, RpcPing, child_env, nameko_worker
from tests.support.auth import auth_headers
from tests.support.broker import Vhost, queue_depth
from tests.support.polling import wait_until
from tests.support.processes import CHILD_ENV, Edge
from tests.support.slow_service import EVENT, SOURCE

pytestmark = pytest.mark.reliability

SLOW = "tests.support.slow_service:SlowUsers"
EVENT_QUEUE = f"evt-{SOURCE}-{EVENT}--slow.handle_tick"
ROUNDS = 2
IN_FLIGHT = 6
# Each call or event takes this long: SIGTERM lands well inside it, and nameko's consume
# loop (1 s drain timeout) would have closed the connection before the work ends.
PAUSE = 3.0


@pytest.fixture(scope="module")
def vhost() -> Iterator[Vhost]:
    """A vhost of this module's own: its stand-in services take the names users_v2 and
    orders, which must never answer the tier's real stack (on the package's vhost)."""
    vhost = Vhost()
    vhost.create()
    yield vhost
    vhost.delete()


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


# -- the edge ----------------------------------------------------------------------------
EDGE_IN_FLIGHT = 4
# 8 threads per process: even if all in-flight calls land on one process, the /ready and
# /health probes find a free thread in it (gthread queues a connection for a busy pool).
EDGE_THREADS = "8"
DRAIN = 1.5


def get(url: str) -> requests.Response:
    return requests.get(url, headers=auth_headers(), timeout=30)


def test_edge_drains_on_sigterm_ready_503_first_then_in_flight_answered(vhost, tmp_path) -> None:
    ledger = tmp_path / "ledger"
    env = child_env(
        os.environ, **CHILD_ENV, AMQP_URI=vhost.uri, SLOW_LEDGER=str(ledger),
        SLOW_SECONDS=str(PAUSE), SLOW_SERVICE_NAME="users_v2",
    )  # fmt: skip
    services = nameko_worker(
        "slow", [SLOW, "tests.support.slow_service:Orders"], env, tmp_path / "slow.log",
        RpcPing(vhost.uri, ("users_v2", "orders")),
    )  # fmt: skip
    runner = Runner()
    try:
        runner.start(services, timeout=60)
        for round_ in range(ROUNDS):
            edge = Edge(
                "users_v2", vhost.uri, tmp_path / f"edge{round_}.log", rpc_timeout=10,
                extra_env={"EDGE_DRAIN_SECONDS": str(DRAIN), "GUNICORN_THREADS": EDGE_THREADS},
            ).start()  # fmt: skip
            edge.wait_ready()
            ids = [f"u{round_}-{i}" for i in range(EDGE_IN_FLIGHT)]
            with ThreadPoolExecutor(EDGE_IN_FLIGHT + 1) as pool:
                answers = [pool.submit(get, f"{edge.url}/users/{user_id}") for user_id in ids]
                time.sleep(0.5)
                process = edge.runner.processes.pop("edge")
                signalled = time.monotonic()
                process.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                ready = get(f"{edge.url}/ready")  # a new connection, while draining
                assert ready.status_code == 503, ready.text
                assert ready.headers["Content-Type"] == "application/problem+json"
                assert ready.json()["checks"] == {"edge": "draining"}
                assert get(f"{edge.url}/health").status_code == 200
                late = pool.submit(get, f"{edge.url}/users/late-{round_}")  # still served
                listening = PortOpen("127.0.0.1", edge.port)
                wait_until(
                    lambda listening=listening: not listening(),
                    timeout=DRAIN + 2,
                    what="the edge to stop accepting after the drain",
                )
                assert time.monotonic() - signalled >= DRAIN
                results = [answer.result() for answer in [*answers, late]]
            assert [r.status_code for r in results] == [200] * (EDGE_IN_FLIGHT + 1)
            assert [r.json()["userId"] for r in results] == [*ids, f"late-{round_}"]
            assert process.wait(timeout=15) == 0
            assert time.monotonic() - signalled < DRAIN + PAUSE + 5
        counts = ledger_counts(ledger, "rpc")
        assert {user_id: n for user_id, n in counts.items() if n != 1} == {}
        assert len(counts) == ROUNDS * (EDGE_IN_FLIGHT + 1)
    finally:
        runner.stop_all()
