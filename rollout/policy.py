"""The rollout's decisions, free of I/O: the weights to step through and each hold's verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rollout.measure import GenerationStats

PASS, WAIT, FAIL = "pass", "wait", "fail"


@dataclass(frozen=True)
class Budget:
    max_error_ratio: float = 0.01
    max_p99_ratio: float = 1.5
    min_requests: int = 200
    # p99s below this are within the histogram's bucket resolution: compare with it instead
    p99_floor: float = 0.025


@dataclass(frozen=True)
class Verdict:
    decision: str
    reason: str


def plan(start: int, to: int, step: int) -> list[int]:
    """The weights after `start`, `step` apart, ending exactly at `to`."""
    if step <= 0:
        raise ValueError(f"--step must be a positive integer, got {step}.")
    direction = -1 if to < start else 1
    weights = list(range(start + direction * step, to, direction * step))
    return [w for w in weights if w != start] + ([to] if to != start else [])


def candidate_of(start: int, to: int) -> str:
    """The generation gaining traffic (P_VALUE is v1's share)."""
    return "v2" if to < start else "v1"


def judge(
    stats: Mapping[str, GenerationStats],
    candidate: str,
    budget: Budget,
    reference_p99: float | None,
) -> Verdict:
    """Judge one hold. `reference_p99`: the baseline's p99 now, or the last one measured
    while it had traffic (at the end of a rollout the baseline gets none)."""
    mine = stats[candidate]
    # More 5xx than the whole judged sample may hold: no further traffic can make it pass.
    if mine.errors > budget.max_error_ratio * max(budget.min_requests, mine.requests):
        return Verdict(
            FAIL,
            f"{candidate} error ratio {mine.error_ratio:.2%} "
            f"({mine.errors:.0f}/{mine.requests:.0f}) above --max-error-ratio "
            f"{budget.max_error_ratio:.2%}",
        )
    if mine.requests < budget.min_requests:
        return Verdict(
            WAIT,
            f"{candidate} served {mine.requests:.0f} requests, fewer than "
            f"--min-requests {budget.min_requests}: too few to judge",
        )
    allowed = budget.max_p99_ratio * max(reference_p99 or 0.0, budget.p99_floor)
    if mine.p99 is not None and mine.p99 > allowed:
        return Verdict(
            FAIL,
            f"{candidate} p99 {mine.p99 * 1000:.1f} ms above {allowed * 1000:.1f} ms "
            f"(--max-p99-ratio {budget.max_p99_ratio} x max(baseline "
            f"{(reference_p99 or 0) * 1000:.1f} ms, floor {budget.p99_floor * 1000:.0f} ms))",
        )
    return Verdict(PASS, f"{candidate} within budget")
