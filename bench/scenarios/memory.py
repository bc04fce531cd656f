"""Scenario 6: resident memory of each worker and edge, idle and under load."""

from __future__ import annotations

import time
from typing import Any

from bench.load import tree_rss_mb
from bench.stack import BenchStack


def idle(stack: BenchStack, settle_s: float = 2.0) -> dict[str, float]:
    time.sleep(settle_s)
    return {name: round(tree_rss_mb(procs), 1) for name, procs in stack.process_trees().items()}


def under_load(http: dict[str, Any]) -> dict[str, float]:
    """Peak RSS seen while the heaviest HTTP runs were going (every c=64 run, any target)."""
    peaks: dict[str, float] = {}
    for run in http["runs"]:
        if run["concurrency"] == max(r["concurrency"] for r in http["runs"]):
            for name, mb in run["peak_rss_mb"].items():
                peaks[name] = max(peaks.get(name, 0.0), mb)
    return peaks
