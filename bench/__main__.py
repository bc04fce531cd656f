"""`python -m bench [--quick]`: bring up an isolated stack, run every scenario, write results."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from bench import budget, plots, profile, report
from bench.config import RESULTS_DIR, BenchConfig
from bench.load import ensure_wrk
from bench.scenarios import http_users, memory, orders_list, propagation, rpc, scale_out
from bench.seed import count_orders, seed_orders
from bench.stack import BenchStack


def _machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {mem:.0f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )


def _step(title: str) -> None:
    print(f"\n== {title} ({time.strftime('%H:%M:%S')})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="c=1, 8, 32, 3 s runs, 20 000 orders (~6 min)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument(
        "--no-budget", action="store_true", help="skip the c=1 latency budget (its own stack)"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    config = BenchConfig(quick=args.quick)
    ensure_wrk()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M")
    results: dict[str, Any] = {
        "meta": {
            "stamp": stamp,
            "quick": args.quick,
            "machine": _machine(),
            "load": "wrk (closed loop)",
        }
    }
    started = time.monotonic()
    stack = BenchStack(config)
    failed: BaseException | None = None
    try:
        _step("stack up (own nx-27017, vhost, workers, edges, gateway, baseline)")
        stack.up(progress=lambda m: print(f"  {m}"))
        results["memory"] = {"idle": memory.idle(stack)}

        _step(f"4a. orders list with {config.orders_small} orders stored")
        seed_orders(config.mongo_uri, config.mongo_db, config.orders_small)
        results["orders_list"] = {"small": orders_list.run(config)}

        _step("1. POST/PUT /users: gateway vs baseline")
        results["http"] = http_users.run(stack, config)
        results["memory"]["under_load"] = memory.under_load(results["http"])

        _step("2. pure RPC vs in-process")
        user = requests.post(
            f"{config.baseline_url}/users/",
            json={"emails": [f"rpc-get-{stamp}@bench.example"], "deliveryAddress": {
                "street": "1 Get St", "city": "Springfield", "state": "CA",
                "postalCode": "90210", "country": "US"}},
            timeout=30,
        ).json()  # fmt: skip
        results["rpc"] = rpc.run(config, user["userId"])

        _step(f"4b. orders list with {config.orders_large} orders stored")
        have = count_orders(config.mongo_uri, config.mongo_db)
        seed_orders(config.mongo_uri, config.mongo_db, config.orders_large - have)
        results["orders_list"]["large"] = orders_list.run(config)

        _step("3. propagation PUT -> orders")
        stored = count_orders(config.mongo_uri, config.mongo_db)
        results["propagation"] = propagation.run(config, stored)

        _step("5. scale-out: 1 vs 2 orders workers")
        results["scale_out"] = scale_out.run(stack, config)

        if not args.no_profile:
            _step(f"profiles (py-spy) of POST /users, gateway path then baseline, c={profile.C}")
            results["profiles"] = profile.run(stack, config, stamp)
    except Exception as error:  # noqa: BLE001 - keep what was measured before it
        failed = error
        results["meta"]["failed"] = repr(error)
    finally:
        _step("stack down")
        stack.down()
    if not args.no_budget and failed is None:
        _step("latency budget at c=1 (own stack, edge-v1 and users_v1 probed)")
        results["budget"] = budget.run(config, stamp)
    results["meta"]["seconds"] = round(time.monotonic() - started)
    results["targets"] = report.targets(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{stamp}.json"
    json_path.write_text(json.dumps(results, indent=1))
    md_path = RESULTS_DIR / f"{stamp}.md"
    md = report.markdown(results)
    pngs = plots.write_all(results, RESULTS_DIR, stamp) if "http" in results else []
    md += "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in pngs) + "\n"
    md_path.write_text(md)
    print("\n" + md)
    names = ", ".join(p.name for p in pngs)
    print(f"wrote {json_path}, {md_path}, {names} in {results['meta']['seconds']} s")
    if failed is not None:
        print(f"bench: stopped early ({failed!r}); the files hold what ran before")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
