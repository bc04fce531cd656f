"""Opt-in timestamps for the latency budget (bench.budget), from bench-only launchers.

Nothing here is imported by production code: `bench.stack.with_probes` starts edge-v1 as
`bench.probes.edge:app` and users_v1 as `bench.probes.worker:ProbedUsersV1`, which wrap
the unchanged app and service. Every process appends one JSON line per request to its own
file under BENCH_PROBE_DIR. Timestamps are CLOCK_MONOTONIC in microseconds: one clock for
every process on the machine, so times from the edge and the worker subtract.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_files: dict[str, Any] = {}


def now_us() -> int:
    return time.monotonic_ns() // 1000


def write(role: str, record: dict[str, Any]) -> None:
    """One line for `record` in <BENCH_PROBE_DIR>/<role>-<pid>.jsonl (line-buffered)."""
    key = f"{role}-{os.getpid()}"
    with _lock:
        out = _files.get(key)
        if out is None:
            directory = Path(os.environ.get("BENCH_PROBE_DIR", "."))
            directory.mkdir(parents=True, exist_ok=True)
            out = _files[key] = (directory / f"{key}.jsonl").open("a", buffering=1)
        out.write(json.dumps(record, separators=(",", ":")) + "\n")


def read(directory: Path, role: str) -> dict[str, dict[str, Any]]:
    """Every record `role`'s processes wrote, by request id (the last one wins)."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob(f"{role}-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("rid"):
                    records[record["rid"]] = record
    return records
