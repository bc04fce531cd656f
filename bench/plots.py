"""PNG plots of a run: latency histograms, throughput vs concurrency, CPU per request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from bench.report import COMPONENTS  # noqa: E402

SERIES = [
    ("baseline", "POST /users"), ("gateway", "POST /users"), ("gateway", "PUT /users/{id}"),
    ("peer", "POST /users"), ("peer", "PUT /users/{id}"),
]  # fmt: skip


def _label(target: str, op: str) -> str:
    return f"{target} {op}"


def latency_histograms(results: dict[str, Any], path: Path) -> None:
    """Each histogram is built from 200 equal-mass wrk quantiles of the first round."""
    runs = [r for r in results["http"]["runs"] if r["round"] == 0]
    concurrencies = sorted({r["concurrency"] for r in runs})
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for ax, c in zip(axes.flat, concurrencies, strict=False):
        for target, op in SERIES:
            run = next(
                (r for r in runs if (r["target"], r["op"], r["concurrency"]) == (target, op, c)),
                None,
            )
            if run is None:
                continue
            values = [ms for _, ms in run["quantiles_ms"]]
            ax.hist(values, bins=40, alpha=0.5, label=_label(target, op), density=True)
        ax.set_title(f"latency, concurrency {c}")
        ax.set_xlabel("ms")
        ax.set_yticks([])
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def throughput(results: dict[str, Any], path: Path) -> None:
    summary = results["http"]["summary"]
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for target, op in SERIES:
        rows = sorted(
            (r for r in summary if (r["target"], r["op"]) == (target, op)),
            key=lambda r: r["concurrency"],
        )
        xs = [r["concurrency"] for r in rows]
        ax.errorbar(
            xs,
            [r["rps"] for r in rows],
            yerr=[
                [r["rps"] - r["rps_min"] for r in rows],
                [r["rps_max"] - r["rps"] for r in rows],
            ],
            marker="o",
            capsize=3,
            label=_label(target, op),
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 8, 32, 64], labels=["1", "8", "32", "64"])
    ax.set_xlabel("concurrent connections")
    ax.set_ylabel("requests/s (median, bars = min-max of rounds)")
    ax.set_title("throughput vs concurrency (2 cores, nx-27017)")
    ax.legend()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def cpu_per_request(results: dict[str, Any], path: Path, concurrency: int = 32) -> None:
    rows = [r for r in results["http"]["summary"] if r["concurrency"] == concurrency]
    comps = COMPONENTS
    fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    labels = [_label(r["target"], r["op"]) for r in rows]
    left = [0.0] * len(rows)
    for comp in comps:
        widths = [r["cpu_ms_per_request"].get(comp, 0.0) for r in rows]
        ax.barh(labels, widths, left=left, label=comp)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlabel(f"CPU ms per request (c={concurrency}); 2 cores = 2000 ms/s")
    ax.legend(fontsize=7, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_all(results: dict[str, Any], out_dir: Path, stamp: str) -> list[Path]:
    paths = [
        out_dir / f"{stamp}-latency.png",
        out_dir / f"{stamp}-throughput.png",
        out_dir / f"{stamp}-cpu.png",
    ]
    latency_histograms(results, paths[0])
    throughput(results, paths[1])
    cpu_per_request(results, paths[2])
    return paths
