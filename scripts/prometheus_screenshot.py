"""Screenshot the Prometheus UI showing a live query (docs/operations.md's picture).

    make up                                   # the local stack, with its Prometheus
    .venv/bin/python -m scripts.prometheus_screenshot [--url http://127.0.0.1:9090] \\
        [--query EXPR] [--out docs/prometheus-live-query.png]

Waits until the query returns series (so the picture shows data), then renders the graph
page with Debian's headless Chromium (the bootstrap installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_QUERY = "sum by (generation, route, status) (rate(edge_requests_total[1m]))"
# FACTS.md: what headless Chromium needs on these machines (no sandbox, no GPU, no updates).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--hide-scrollbars",
)  # fmt: skip


def series(url: str, query: str) -> int:
    api = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(api, timeout=5) as response:
        return len(json.load(response)["data"]["result"])


def wait_for_series(url: str, query: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = series(url, query)
            if found:
                return found
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url}: no series for {query!r} within {timeout:.0f}s")
        time.sleep(2)


def screenshot(url: str, query: str, out: Path, width: int, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is missing: run `make bootstrap`")
    page = f"{url}/graph?" + urllib.parse.urlencode(
        {"g0.expr": query, "g0.tab": "0", "g0.range_input": "5m"}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=8000",
                f"--screenshot={out.resolve()}",
                page,
            ],  # fmt: skip
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def main(argv: list[str] | None = None) -> int:
    port = os.environ.get("PROMETHEUS_PORT", "9090")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}")
    parser.add_argument("--query", default=DEFAULT_QUERY)
    parser.add_argument("--out", type=Path, default=Path("docs/prometheus-live-query.png"))
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for data")
    parser.add_argument("--size", default="1400x900")
    args = parser.parse_args(argv)
    found = wait_for_series(args.url, args.query, args.wait)
    width, height = (int(n) for n in args.size.split("x"))
    screenshot(args.url, args.query, args.out, width, height)
    print(f"{args.out}: {args.query} ({found} series) from {args.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
