"""`python -m bench.budget`: where one request's time goes at c=1, segment by segment.

Brings up the bench stack in budget mode (edge-v1 and users_v1 started through
bench.probes, which timestamp the unchanged code), sends POST /users/ and PUT /users/{id}
one at a time through the gateway with a unique X-Request-ID each, joins the client's,
the edge's and the worker's timestamps by that id and prints median and p99 per segment.
The same client then times whole requests straight to the edge (the gateway's share is
the difference) and to the lean baseline. Writes bench/results/<stamp>-budget.{json,md}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import time
import warnings
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bench.budget_report import budget, budget_markdown, totals
from bench.config import RESULTS_DIR, BenchConfig
from bench.probes import now_us, read
from bench.stack import PROBE_DIR, BenchStack


def _address(n: int) -> dict[str, str]:
    return {"street": f"{n} Budget St", "city": "Springfield", "state": "CA",
            "postalCode": "90210", "country": "US"}  # fmt: skip


def post_body(tag: str, n: int) -> dict[str, Any]:
    return {"emails": [f"budget-{tag}-{n}@bench.example"], "deliveryAddress": _address(n)}


class Client:
    """One keep-alive connection, one request at a time (c=1), timed around send and read."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def send(self, method: str, path: str, body: Any, rid: str) -> dict[str, Any]:
        payload = json.dumps(body)
        headers = {"Content-Type": "application/json", "X-Request-ID": rid}
        # The bench consumer's key (BenchStack.up exports it); the baseline ignores it.
        headers["apikey"] = os.environ.get("BENCH_API_KEY", "")
        sent = now_us()
        self.connection.request(method, path, payload, headers)
        response = self.connection.getresponse()
        data = response.read()
        received = now_us()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return {"rid": rid, "sent": sent, "received": received, "body": data}

    def close(self) -> None:
        self.connection.close()


def _posts(url: str, tag: str, n: int) -> list[dict[str, Any]]:
    client = Client(url)
    try:
        return [client.send("POST", "/users/", post_body(tag, i), f"{tag}-{i}") for i in range(n)]
    finally:
        client.close()


def _puts(url: str, tag: str, user_ids: list[str], n: int) -> list[dict[str, Any]]:
    client = Client(url)
    try:
        return [
            client.send("PUT", f"/users/{user_ids[i % len(user_ids)]}",
                        {"deliveryAddress": _address(i)}, f"{tag}-{i}")
            for i in range(n)
        ]  # fmt: skip
    finally:
        client.close()


def _ms(records: list[dict[str, Any]]) -> list[float]:
    return [(r["received"] - r["sent"]) / 1000 for r in records]


def measure(config: BenchConfig, n: int, stamp: str) -> dict[str, Any]:
    """The budget on a stack that is up in budget mode."""
    print(f"  warm-up, then {n} POST and {n} PUT through the gateway, one at a time")
    _posts(config.gateway_url, f"w{stamp}", 50)
    posts = _posts(config.gateway_url, f"p{stamp}", n)
    user_ids = [json.loads(r["body"])["userId"] for r in posts[:200]]
    puts = _puts(config.gateway_url, f"u{stamp}", user_ids, n)
    print(f"  {n} POST straight to edge-v1, {n} to the lean baseline")
    direct = _posts(config.edge_v1_url, f"e{stamp}", n)
    lean = _posts(config.baseline_url, f"b{stamp}", n)
    time.sleep(0.5)  # the last lines are written after the response
    edge, worker = read(PROBE_DIR, "edge"), read(PROBE_DIR, "worker")
    return {
        "budgets": {
            "POST /users": budget(posts, edge, worker),
            "PUT /users/{id}": budget(puts, edge, worker),
            "POST /users straight to edge-v1": budget(direct, edge, worker),
        },
        "totals": {
            "POST /users via gateway": totals(_ms(posts)),
            "POST /users straight to edge-v1": totals(_ms(direct)),
            "POST /users lean baseline": totals(_ms(lean)),
            "PUT /users/{id} via gateway": totals(_ms(puts)),
        },
    }


def run(config: BenchConfig, stamp: str, requests: int | None = None) -> dict[str, Any]:
    """Its own stack (probed edge-v1 and users_v1), up and down around the measurement."""
    shutil.rmtree(PROBE_DIR, ignore_errors=True)
    stack = BenchStack(config, probes=True)
    try:
        stack.up(progress=lambda m: print(f"  {m}"))
        return measure(config, requests or config.budget_requests, stamp)
    finally:
        stack.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__)
    parser.add_argument("--requests", type=int, default=None, help="per operation (>= 1000)")
    parser.add_argument("--quick", action="store_true", help="1 000 requests per operation")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    config = BenchConfig(quick=args.quick)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M")
    result = run(config, stamp, args.requests)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{stamp}-budget.json").write_text(json.dumps(result, indent=1))
    md = "\n".join([f"# Latency budget {stamp}", "", *budget_markdown(result)])
    (RESULTS_DIR / f"{stamp}-budget.md").write_text(md)
    print("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
