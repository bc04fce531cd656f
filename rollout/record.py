"""The rollout record: one JSON line per event (time, weight, per-generation stats, decision)
and a PNG of weight, error ratio and p99 over time drawn from it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rollout.measure import GenerationStats


class Record:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.time()

    def write(
        self,
        event: str,
        weight: int,
        stats: dict[str, GenerationStats] | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        line = {
            "time": round(time.time(), 3),
            "elapsed_s": round(time.time() - self.started, 2),
            "event": event,
            "weight": weight,
            **({g: s.as_record() for g, s in stats.items()} if stats else {}),
            **more,
        }
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
        return line


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot(record: Path, png: Path) -> Path:
    """Draw weight, error ratio and p99 per generation over the rollout's time."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    lines = read(record)
    judged = [line for line in lines if "v1" in line]
    fig, (weights, errors, p99s) = plt.subplots(3, 1, sharex=True, figsize=(8, 7))
    weights.step(
        [line["elapsed_s"] for line in lines],
        [line["weight"] for line in lines],
        where="post",
        color="black",
    )
    weights.set_ylabel("P_VALUE (% to v1)")
    weights.set_ylim(-5, 105)
    for line in lines:
        if line["event"] in ("fail", "rollback", "interrupted", "gave-up"):
            weights.annotate(line["event"], (line["elapsed_s"], line["weight"]), fontsize=8)
    for generation, colour in (("v1", "tab:blue"), ("v2", "tab:orange")):
        times = [line["elapsed_s"] for line in judged]
        errors.plot(
            times,
            [line[generation]["error_ratio"] * 100 for line in judged],
            marker="o",
            color=colour,
            label=generation,
        )
        p99s.plot(
            times,
            [_number(line[generation]["p99_ms"]) for line in judged],
            marker="o",
            color=colour,
            label=generation,
        )
    errors.set_ylabel("5xx ratio (%)")
    p99s.set_ylabel("p99 (ms)")
    p99s.set_xlabel("seconds since the rollout started")
    errors.legend(loc="upper left")
    fig.suptitle(f"micro-rollout {record.name}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def _number(value: float | None) -> float:
    return float("nan") if value is None else value  # a gap in the line, not a crash
