"""`python -m bench.relay`: what one RPC costs each process, with no work in it.

    .venv/bin/python -m bench.relay [--threads 1 4 8] [--seconds 5] [--rounds 2]
    .venv/bin/python -m bench.relay --self-check   # `make bench-check`: does it still measure?

Starts `bench.relay_echo` (the workers' RPC entrypoint, call logging, metrics and server span
around a method that returns its argument) with `nameko run` in a vhost of its own, calls
it from N threads through the edge's client (`http_edge/rpc.py`, one connection per thread,
as in gunicorn), and prints the CPU milliseconds per call spent by the caller, the worker
and RabbitMQ — the relay's cost without the domain work, far steadier than HTTP throughput
on a shared machine. The baseline, measured in the same process, is the same call in-process: the
method with the JSON round trip of its argument. Never fails on a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace

import psutil
from nameko.exceptions import UnknownService

from bench.config import RUN_DIR, BenchConfig
from bench.load import tree_cpu
from bench.relay_echo import RelayEcho
from bench.stack import BIN, ROOT, BenchStack, rabbitmq_process, wait_until
from http_edge.rpc import NamekoRpcClient
from launch.spec import child_env

SERVICE = "relay_echo"
# The body of a POST /users the bench sends: the same size of message both ways.
PAYLOAD = {
    "emails": ["relay-1@bench.example"],
    "deliveryAddress": {"street": "1 Bench St", "city": "Springfield", "state": "CA",
                        "postalCode": "90210", "country": "US"},
    "firstName": "Bench", "lastName": "User", "phoneNumber": "5550100200",
}  # fmt: skip
CONTEXT = {"request_id": "bench-relay"}


def _answers(client: NamekoRpcClient) -> bool:
    try:
        return client.call(SERVICE, "echo", 1, context=CONTEXT) == 1
    except UnknownService:
        return False


def in_process(seconds: float) -> dict[str, float]:
    """The baseline: the echo method and the JSON round trip of its argument, no broker."""
    method = RelayEcho.echo.__get__(RelayEcho())
    calls, started, cpu = 0, time.monotonic(), time.process_time()
    while time.monotonic() - started < seconds:
        json.loads(json.dumps(method(json.loads(json.dumps(PAYLOAD)))))
        calls += 1
    elapsed = time.monotonic() - started
    return {"calls_per_s": calls / elapsed, "caller": (time.process_time() - cpu) * 1000 / calls}


def over_rpc(
    client: NamekoRpcClient, worker: psutil.Process, threads: int, seconds: float
) -> dict[str, float]:
    """Calls/s and CPU-ms per call of caller, worker and RabbitMQ, N threads for `seconds`."""
    counts = [0] * threads

    def run(index: int, until: float) -> None:
        while time.monotonic() < until:
            client.call(SERVICE, "echo", PAYLOAD, context=CONTEXT)
            counts[index] += 1

    def burst(duration: float) -> None:
        until = time.monotonic() + duration
        pool = [threading.Thread(target=run, args=(i, until)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()

    burst(1.0)  # warm-up: every thread opens its connection and checks the consumer
    counts[:] = [0] * threads
    processes = {"caller": psutil.Process(), "worker": worker, "rabbitmq": rabbitmq_process()}
    measured = {name: process for name, process in processes.items() if process is not None}
    before = {name: tree_cpu([process]) for name, process in measured.items()}
    started = time.monotonic()
    burst(seconds)
    elapsed = time.monotonic() - started
    calls = max(sum(counts), 1)
    result = {"calls_per_s": calls / elapsed}
    for name, process in measured.items():
        result[name] = (tree_cpu([process]) - before[name]) * 1000 / calls
    return result


@contextlib.contextmanager
def echo_worker() -> Iterator[tuple[NamekoRpcClient, psutil.Process]]:
    """`nameko run bench.relay_echo` in a vhost of its own, and a client that reaches it."""
    config = BenchConfig()
    stack = BenchStack(replace(config, vhost=f"{config.vhost}-relay"))
    stack.reset_vhost()
    # Logs in .run/bench/logs/relay_echo.log; stack.down() stops it and drops the vhost.
    # Its spans go where the bench stack's do (launch.spec.build_stack's TRACES_DIR).
    env = child_env(stack.config.stack_settings().env, TRACES_DIR=str(RUN_DIR / "traces"))
    stack._start("relay_echo", [str(BIN / "nameko"), "run", "--config",
                                str(ROOT / "config.yaml"), "bench.relay_echo"], env)  # fmt: skip
    worker = psutil.Process(stack.processes["relay_echo"].pid)
    client = NamekoRpcClient(stack.config.amqp_uri, timeout=10)
    try:
        wait_until(lambda: _answers(client), "bench.relay_echo", timeout=60)
        yield client, worker
    finally:
        client.discard()
        stack.down()


def self_check(client: NamekoRpcClient, worker: psutil.Process) -> list[str]:
    """What is wrong with the measurement (empty if nothing): counts, not times."""
    problems = []
    if client.call(SERVICE, "echo", PAYLOAD, context=CONTEXT) != PAYLOAD:
        problems.append("the echo worker did not return its argument")
    measured = over_rpc(client, worker, threads=2, seconds=0.5)
    if measured["calls_per_s"] <= 10:
        problems.append(f"only {measured['calls_per_s']:.1f} calls/s counted over RPC")
    for process in ("caller", "worker", "rabbitmq"):
        if measured.get(process, 0.0) <= 0:
            problems.append(f"no CPU measured for the {process} (its process was not found?)")
    baseline = in_process(0.2)
    if baseline["calls_per_s"] <= measured["calls_per_s"]:
        problems.append("the in-process baseline counted fewer calls than the RPC path")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--self-check", action="store_true", help="measure briefly; exit 1 if it measured nothing"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    with echo_worker() as (client, worker):
        if args.self_check:
            problems = self_check(client, worker)
            for problem in problems:
                print(f"bench.relay self-check: {problem}")
            print("bench.relay self-check:", "FAILED" if problems else "ok")
            return 1 if problems else 0
        baseline = in_process(2.0)
        print(
            f"in-process (baseline): {baseline['calls_per_s']:9.0f} calls/s, "
            f"{baseline['caller']:.3f} CPU-ms per call"
        )
        header = "threads round  calls/s  vs in-process | CPU-ms per call: caller worker"
        print(header + " rabbitmq total")
        for threads in args.threads:
            for round_ in range(1, args.rounds + 1):
                r = over_rpc(client, worker, threads, args.seconds)
                rabbit = r.get("rabbitmq", 0.0)
                print(
                    f"{threads:7d} {round_:5d} {r['calls_per_s']:8.0f} "
                    f"{r['calls_per_s'] / baseline['calls_per_s']:13.4f}x |"
                    f"{r['caller']:23.3f} {r['worker']:6.3f} {rabbit:8.3f} "
                    f"{r['caller'] + r['worker'] + rabbit:5.3f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
