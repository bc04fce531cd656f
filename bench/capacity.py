"""`python -m bench.capacity`: the figures docs/scaling.md's capacity model is built from.

On the isolated bench stack, short closed-loop wrk runs (POST /users/: one RPC and one
MongoDB insert per request; PUT /users/{id}: an update plus its event) against one edge
directly, the same through the gateway, the baseline app (an edge-shaped gunicorn app with
no RPC), then again with a second `nameko run` of users_v1 consuming the same queue. Prints
req/s, p50/p99 and the CPU milliseconds each component spent per request. ~3 minutes.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import Any

from bench.config import RUN_DIR, BenchConfig
from bench.http_matrix import tag as _tag
from bench.load import run_wrk
from bench.scenarios.http_users import measure, user_ids_file
from bench.stack import LOG_DIR, BenchStack
from launch.spec import RpcPing, child_env, nameko_worker


def _row(stack: BenchStack, label: str, url: str, script: str, c: int, seconds: int) -> dict:
    if script == "put_users.lua":
        args = [_tag("p", c, 0), str(user_ids_file(stack.config, seed=c)), str(min(2, c))]
    else:
        args = [_tag(label, c, 0)]
    result = measure(stack, url, script, c, seconds, args, label)
    cpu = {k: v for k, v in sorted(result["cpu_ms_per_request"].items()) if v >= 0.05}
    print(
        f"  {label:34} c={c:<3} {result['rps']:7.1f} req/s  p50 {result['latency_ms']['p50']:6.1f}"
        f"  p99 {result['latency_ms']['p99']:6.1f} ms  errors {sum(result['errors'].values())}"
        f"  CPU ms/req {cpu}",
        flush=True,
    )
    return {"label": label, "concurrency": c, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    config = BenchConfig(quick=True)
    stack = BenchStack(config)
    edge = f"http://127.0.0.1:{config.edge_v1_port}"
    c, s = args.concurrency, args.seconds
    rows: list[dict[str, Any]] = []
    stack.up()
    try:
        run_wrk(config.baseline_url, "post_users.lua", 8, 3, [_tag("seed", 8, 0)], "users")
        run_wrk(edge, "post_users.lua", 8, 2, [_tag("warm", 8, 0)], "warm-up")
        for label, url, script in (
            ("baseline POST (no RPC)", config.baseline_url, "post_users.lua"),
            ("1 edge, 1 worker POST", edge, "post_users.lua"),
            ("gateway, 1 edge, 1 worker POST", config.gateway_url, "post_users.lua"),
            ("1 edge, 1 worker PUT", edge, "put_users.lua"),
        ):
            rows.append(_row(stack, label, url, script, c, s))
        env = child_env(config.stack_settings().env)
        ready = RpcPing(config.amqp_uri, ("users_v1",))
        second = nameko_worker("users_v1-2", ["workers.users_v1"], env, LOG_DIR / "u2.log", ready)
        stack.runner.start(second, timeout=90)
        time.sleep(2)
        for label, url, script in (
            ("1 edge, 2 workers POST", edge, "post_users.lua"),
            ("1 edge, 2 workers PUT", edge, "put_users.lua"),
            ("1 edge, 2 workers POST c*2", edge, "post_users.lua"),
        ):
            rows.append(_row(stack, label, url, script, c * (2 if "c*2" in label else 1), s))
    finally:
        stack.down()
    out = RUN_DIR / f"capacity-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
