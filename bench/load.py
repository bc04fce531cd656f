"""HTTP load from a separate process (wrk, C, ~1 core at most) plus CPU/RSS accounting.

wrk is used rather than a Python client because on 2 cores a Python load generator would
eat the CPU the system under test needs; the same generator drives gateway and baseline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm

LUA_DIR = Path(__file__).resolve().parent / "lua"


def ensure_wrk() -> str:
    """Path of wrk; installs Debian's package when missing (the bench runs as root here)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk not found, installing Debian's wrk package")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is required (apt-get install -y wrk)")
    return found


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]  # mean, min, max, p50, p95, p99
    quantiles_ms: list[tuple[float, float]]  # (percentile, ms) for histograms

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "rps": round(self.rps, 1),
            "errors": self.errors,
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
        }


def _parse(stdout: str) -> WrkResult:
    line = next((x for x in stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{stdout[-2000:]}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    points = [(p, us / 1000) for p, us in data["latency_us"]["percentiles"]]
    by_p = dict(points)
    lat = data["latency_us"]
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        latency_ms={
            "mean": lat["mean"] / 1000,
            "min": lat["min"] / 1000,
            "max": lat["max"] / 1000,
            "p50": by_p[50.0],
            "p95": by_p[95.0],
            "p99": by_p[99.0],
        },
        quantiles_ms=points,
    )


def run_wrk(
    url: str,
    script: str,
    concurrency: int,
    seconds: int,
    args: list[str] | None = None,
    label: str = "",
    threads: int | None = None,
) -> WrkResult:
    """Closed-loop load: `concurrency` connections, each sending its next request as soon as
    the previous answered, for `seconds`. Shows a time progress bar meanwhile."""
    threads = threads or min(2, concurrency)
    argv = [
        ensure_wrk(), "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s",
        "--timeout", "30s", "-s", str(LUA_DIR / script), url, "--", *(args or []),
    ]  # fmt: skip
    env = {**os.environ, "LUA_PATH": f"{LUA_DIR}/?.lua;;"}
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    with tqdm(total=seconds, desc=label or script, unit="s", leave=False, ncols=90) as bar:
        start = time.monotonic()
        while process.poll() is None:
            time.sleep(0.5)
            bar.n = min(seconds, round(time.monotonic() - start, 1))
            bar.refresh()
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stderr.strip()}")
    return _parse(stdout)


@dataclass
class ResourceMonitor:
    """CPU seconds and peak RSS per component while a load runs (sampled every 0.5 s).

    CPU per request per component is the most telling figure on a 2-core machine: the
    throughput ceiling is about 2 CPU-seconds divided by the CPU all components spend on
    one request.
    """

    trees: dict[str, list[psutil.Process]]
    interval: float = 0.5
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_start: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> ResourceMonitor:
        self._cpu_start = {name: tree_cpu(procs) for name, procs in self.trees.items()}
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for name, procs in self.trees.items():
            self.cpu_seconds[name] = tree_cpu(procs) - self._cpu_start[name]

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            for name, procs in self.trees.items():
                rss = tree_rss_mb(procs)
                self.peak_rss_mb[name] = max(self.peak_rss_mb.get(name, 0.0), rss)


def tree_cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def tree_rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20
