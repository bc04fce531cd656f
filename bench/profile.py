"""Sampling profiles (py-spy) of the hot path while POST /users load runs; summarised."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.config import RESULTS_DIR, BenchConfig
from bench.load import run_wrk
from bench.stack import BenchStack

PY_SPY = Path(sys.executable).parent / "py-spy"
SECONDS = 10
# The hop is profiled where issue 17 asks: POST /users at c=8.
C = 8


def _record(pid: int, out: Path, seconds: int, subprocesses: bool = False) -> subprocess.Popen:
    argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
            "--format", "raw", "--nonblocking", "-o", str(out)]  # fmt: skip
    if subprocesses:
        argv.append("--subprocesses")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive share of samples per function (file:line stripped), from collapsed stacks."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0, "inclusive": [], "self": []}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        leaf[frames[-1]] += n

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {"samples": total, "inclusive": share(inclusive), "self": share(leaf)}


def run(stack: BenchStack, config: BenchConfig, stamp: str) -> dict[str, Any]:
    """Profile the gateway path and then the baseline, each under POST /users at c=C."""
    out_dir = RESULTS_DIR / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, Any] = {}
    targets = {
        "gateway": (config.gateway_url, {"edge-v1": True, "users_v1": False, "mongo": False}),
        "baseline": (config.baseline_url, {"baseline": True, "mongo": False}),
    }
    for target, (url, components) in targets.items():
        recorders = {
            name: _record(
                stack.processes[name].pid, out_dir / f"{stamp}-{target}-{name}.txt", SECONDS, sub
            )
            for name, sub in components.items()
        }
        time.sleep(0.5)
        run_wrk(url, "post_users.lua", C, SECONDS, [f"prof{target[0]}{int(time.time())}"],
                label=f"  profiling {target}")  # fmt: skip
        for recorder in recorders.values():
            recorder.wait(timeout=60)
        for name in components:
            path = out_dir / f"{stamp}-{target}-{name}.txt"
            summaries[f"{target}/{name}"] = {
                "file": str(path.relative_to(RESULTS_DIR)),
                **summarize(path),
            }
    return summaries
