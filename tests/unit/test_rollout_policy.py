"""micro-rollout's pure parts: the plan, the verdicts and the p99 of scraped histograms."""

from __future__ import annotations

import pytest

from rollout.measure import EdgeScrapes, GenerationStats, parse_edge_metrics, quantile
from rollout.policy import FAIL, PASS, WAIT, Budget, candidate_of, judge, plan


@pytest.mark.parametrize(
    ("start", "to", "step", "weights"),
    [
        (100, 0, 25, [75, 50, 25, 0]),
        (100, 0, 30, [70, 40, 10, 0]),
        (0, 100, 40, [40, 80, 100]),
        (100, 95, 10, [95]),
        (50, 50, 10, []),
    ],
)
def test_plan_steps_and_ends_exactly_at_to(start, to, step, weights):
    assert plan(start, to, step) == weights


def test_plan_refuses_a_step_of_zero():
    with pytest.raises(ValueError, match="--step"):
        plan(100, 0, 0)


def test_the_candidate_is_the_generation_gaining_traffic():
    assert candidate_of(100, 0) == "v2"
    assert candidate_of(0, 100) == "v1"


def stats(v1: GenerationStats, v2: GenerationStats) -> dict[str, GenerationStats]:
    return {"v1": v1, "v2": v2}


HEALTHY = GenerationStats(1000, 0, 0.004)


@pytest.mark.parametrize(
    ("v2", "decision", "words"),
    [
        (GenerationStats(199, 0, 0.004), WAIT, "too few to judge"),
        (GenerationStats(199, 2, 0.004), WAIT, "too few"),
        # 3 errors already break a 1 % budget over 200 requests: no need to wait for more
        (GenerationStats(50, 3, 0.004), FAIL, "error ratio 6.00% (3/50)"),
        (GenerationStats(200, 3, 0.004), FAIL, "error ratio 1.50%"),
        (GenerationStats(200, 2, 0.004), PASS, "within budget"),  # 1.00 % is on the budget
        (GenerationStats(500, 0, 0.0374), PASS, "within"),  # below 1.5 x the 25 ms floor
        (GenerationStats(500, 0, 0.205), FAIL, "p99 205.0 ms"),
    ],
)
def test_judge(v2, decision, words):
    verdict = judge(stats(HEALTHY, v2), "v2", Budget(), reference_p99=0.004)
    assert verdict.decision == decision
    assert words in verdict.reason


def test_p99_compares_with_a_slow_baseline_not_only_the_floor():
    verdict = judge(
        stats(HEALTHY, GenerationStats(500, 0, 0.140)), "v2", Budget(), reference_p99=0.100
    )
    assert verdict.decision == PASS  # 140 ms < 1.5 x 100 ms


def test_quantile_interpolates_like_histogram_quantile():
    # 100 observations: 90 under 10 ms, 10 between 10 and 100 ms
    buckets = {0.01: 90, 0.1: 100, float("inf"): 100}
    assert quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 0.9)
    assert quantile(0.5, buckets) == pytest.approx(0.01 * 50 / 90)
    assert quantile(0.99, {0.01: 0, float("inf"): 0}) is None
    assert quantile(0.99, {0.01: 1, float("inf"): 100}) == 0.01  # +Inf: its lower bound


USERS = 'generation="v2",route="/users/<user_id>",method="GET"'
ORDERS = 'generation="v2",route="/orders/<order_id>",method="GET"'
SCRAPE = """
edge_requests_total{%(users)s,status="200",consumer=""} %(ok)s
edge_requests_total{%(users)s,status="503",consumer=""} %(bad)s
edge_requests_total{%(orders)s,status="200",consumer=""} 999
edge_errors_total{%(users)s,status="503"} %(bad)s
edge_request_duration_seconds_bucket{%(users)s,le="0.01"} %(fast)s
edge_request_duration_seconds_bucket{%(users)s,le="+Inf"} %(all)s
"""


def test_two_scrapes_diff_into_a_window_of_users_requests_only():
    before = parse_edge_metrics(
        SCRAPE % {"users": USERS, "orders": ORDERS, "ok": 100, "bad": 0, "fast": 100, "all": 100}
    )
    after = parse_edge_metrics(
        SCRAPE % {"users": USERS, "orders": ORDERS, "ok": 190, "bad": 10, "fast": 150, "all": 200}
    )

    window = EdgeScrapes([]).window(before, after)["v2"]

    assert (window.requests, window.errors) == (100, 10)  # /orders is not the rollout's
    assert window.error_ratio == 0.1
    assert window.p99 == 0.01  # 99th of 100 is past the 50 fast ones: the +Inf bucket
    assert EdgeScrapes([]).window(after, before)["v2"].requests == 0  # a restart, not < 0
