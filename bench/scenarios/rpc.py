"""Scenario 2: users_v1 create/get over RPC (ClusterRpcProxy) vs the same rules in-process.

The difference is the RabbitMQ hop (publish + confirm, consume, reply) and the nameko
worker plumbing. One proxy and one MongoClient per load process, never shared.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import statistics
import time
import warnings
from typing import Any

from tqdm import tqdm

from bench.config import BenchConfig

CONCURRENCIES = (1, 8)


def _payload(tag: str, n: int) -> dict[str, Any]:
    return {
        "emails": [f"rpc-{tag}-{n}@bench.example"],
        "deliveryAddress": {
            "street": f"{n} Rpc St", "city": "Springfield", "state": "CA",
            "postalCode": "90210", "country": "US",
        },
    }  # fmt: skip


def _load_process(
    mode: str,
    op: str,
    config: BenchConfig,
    seconds: float,
    tag: str,
    user_id: str,
    out: Any,
    ready: Any,
    go: Any,
) -> None:
    """One load process: connects, waits for `go` (so all processes overlap for the whole
    window, not staggered by their start-up), calls `op` back to back for `seconds`."""
    warnings.filterwarnings("ignore")
    latencies: list[float] = []
    if mode == "rpc":
        from nameko.standalone.rpc import ClusterRpcProxy

        with ClusterRpcProxy({"AMQP_URI": config.amqp_uri}, timeout=30) as proxy:
            service = proxy.users_v1
            call = service.create if op == "create" else service.get
            ready.put(True)
            go.wait()
            _loop(call, op, tag, user_id, seconds, latencies)
    else:
        from pymongo import MongoClient

        from workers.users import domain as users_domain
        from workers.users.repository import UsersRepository

        with MongoClient(config.mongo_uri) as client:
            repo = UsersRepository(client[config.mongo_db])

            def call(arg: Any) -> Any:
                if op == "create":
                    return users_domain.create_user(repo, arg, users_domain.V1)
                return users_domain.get_user(repo, arg)

            ready.put(True)
            go.wait()
            _loop(call, op, tag, user_id, seconds, latencies)
    out.put(latencies)


def _loop(
    call: Any, op: str, tag: str, user_id: str, seconds: float, latencies: list[float]
) -> None:
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        arg = _payload(tag, n) if op == "create" else user_id
        started = time.perf_counter()
        call(arg)
        latencies.append((time.perf_counter() - started) * 1000)


def _measure(
    mode: str, op: str, concurrency: int, config: BenchConfig, user_id: str
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")  # no inherited sockets or eventlet state in the children
    out, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    seconds = config.rpc_seconds
    stamp = int(time.time() * 1000) % 10**8
    processes = [
        ctx.Process(
            target=_load_process,
            args=(mode, op, config, seconds, f"{mode}{op}{concurrency}x{i}t{stamp}", user_id)
            + (out, ready, go),
        )
        for i in range(concurrency)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    go.set()
    label = f"  {mode:6} {op:6} x{concurrency}"
    with tqdm(total=seconds, desc=label, unit="s", leave=False, ncols=90) as bar:
        start = time.monotonic()
        results = []
        while len(results) < concurrency:
            with contextlib.suppress(queue.Empty):  # still running
                results.append(out.get(timeout=0.5))
            bar.n = min(seconds, round(time.monotonic() - start, 1))
            bar.refresh()
    for process in processes:
        process.join()
    latencies = sorted(x for r in results for x in r)
    calls = len(latencies)
    return {
        "mode": mode,
        "op": op,
        "concurrency": concurrency,
        "calls": calls,
        "calls_per_s": round(calls / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 3) if latencies else None,
        "p99_ms": round(latencies[int(0.99 * (calls - 1))], 3) if latencies else None,
    }


def run(config: BenchConfig, user_id: str) -> dict[str, Any]:
    rows = []
    for op in ("create", "get"):
        for concurrency in CONCURRENCIES:
            # In-process and RPC back to back, so both see the same machine load.
            pair = [_measure(mode, op, concurrency, config, user_id) for mode in ("inproc", "rpc")]
            inproc, rpc = pair
            ratio = rpc["calls_per_s"] / inproc["calls_per_s"] if inproc["calls_per_s"] else 0.0
            hop_ms = (rpc["p50_ms"] or 0) - (inproc["p50_ms"] or 0)
            for row in pair:
                row["rpc_over_inproc"] = round(ratio, 3)
                row["rabbitmq_hop_p50_ms"] = round(hop_ms, 3)
            rows += pair
            print(
                f"  {op:6} x{concurrency}: in-process {inproc['calls_per_s']:7.1f}/s "
                f"(p50 {inproc['p50_ms']:.2f} ms)  RPC {rpc['calls_per_s']:7.1f}/s "
                f"(p50 {rpc['p50_ms']:.2f} ms)  ratio {ratio:.2f}  hop +{hop_ms:.2f} ms"
            )
    return {"rows": rows}
