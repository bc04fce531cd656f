"""Sampling profiles (py-spy) of the hot path while POST /users load runs; summarised."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from bench.config import RESULTS_DIR, BenchConfig
from bench.load import run_wrk
from bench.profile_report import parse_perf_stat, per_request
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


PERF_EVENTS = "task-clock,context-switches,cpu-migrations"


def _perf_stat(pids: list[int], seconds: int, out: Path) -> subprocess.Popen | None:
    """`perf stat` on these processes for `seconds` (software events: no PMU needed)."""
    perf = shutil.which("perf")
    if perf is None or not pids:
        return None
    argv = [perf, "stat", "-x", ",", "-e", PERF_EVENTS, "-o", str(out),
            "-p", ",".join(map(str, pids)), "--", "sleep", str(seconds)]  # fmt: skip
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
        trees = stack.process_trees()
        # nginx is on the gateway path only.
        on_path = (*components, "gateway") if target == "gateway" else tuple(components)
        perf_names = [n for n in on_path if n in trees]
        perfs = {
            name: _perf_stat([p.pid for p in trees[name]], SECONDS,
                             out_dir / f"{stamp}-{target}-{name}.perf")
            for name in perf_names
        }  # fmt: skip
        time.sleep(0.5)
        result = run_wrk(url, "post_users.lua", C, SECONDS, [f"prof{target[0]}{int(time.time())}"],
                         label=f"  profiling {target}")  # fmt: skip
        for process in (*recorders.values(), *(p for p in perfs.values() if p is not None)):
            process.wait(timeout=60)
        counts = {
            name: parse_perf_stat((out_dir / f"{stamp}-{target}-{name}.perf").read_text())
            for name, process in perfs.items()
            if process is not None and (out_dir / f"{stamp}-{target}-{name}.perf").exists()
        }
        # perf counts the whole window (~0.5 s longer than the load): an upper bound.
        summaries[f"{target}/perf"] = {
            "requests": result.requests,
            "per_request": per_request(counts, result.requests),
        }
        for name in components:
            path = out_dir / f"{stamp}-{target}-{name}.txt"
            summaries[f"{target}/{name}"] = {
                "file": str(path.relative_to(RESULTS_DIR)),
                **summarize(path),
            }
    return summaries


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.profile`: just this phase, on its own bench stack (~1 minute)."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    config = BenchConfig()
    stack = BenchStack(config)
    stamp = time.strftime("%Y-%m-%d-%H%M", time.gmtime())
    try:
        stack.up(progress=lambda m: print(f"  {m}"))
        for url in (config.baseline_url, config.gateway_url):
            run_wrk(url, "post_users.lua", C, 3, [f"warm{int(time.time())}"], label="warm-up")
        summaries = run(stack, config, stamp)
    finally:
        stack.down()
    for name, data in summaries.items():
        print(f"\n== {name}")
        if "per_request" in data:
            for component, figures in data["per_request"].items():
                print(f"  {component:10} {figures}")
            continue
        print(f"  {data['samples']} samples; top self:")
        for frame, share in data["self"][:15]:
            print(f"    {share:5.1f}%  {frame}")
        print("  top inclusive:")
        for frame, share in data["inclusive"][:20]:
            print(f"    {share:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
