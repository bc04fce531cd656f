"""bench/report.py: the CPU ceiling ratio that explains the measured throughput ratio."""

from __future__ import annotations

from bench.report import PROPAGATION_FIELDS, cpu_ceiling, propagation_rounds


def summary_row(target: str, op: str, c: int, cpu: dict[str, float], ratio: float) -> dict:
    return {"target": target, "op": op, "concurrency": c, "cpu_ms_per_request": cpu,
            "ratio_vs_baseline_post": ratio}  # fmt: skip


def test_ceiling_is_baseline_cpu_over_gateway_cpu_per_concurrency() -> None:
    summary = [
        summary_row("baseline", "POST /users", 8, {"baseline": 1.2, "mongo": 0.8}, 1.0),
        summary_row("gateway", "POST /users", 8,
                    {"gateway": 0.1, "edge-v1": 1.1, "users_v1": 1.0, "rabbitmq (shared)": 0.4,
                     "mongo": 0.9, "not a component": 99.0}, 0.61),
        summary_row("gateway", "PUT /users/{id}", 8, {"users_v1": 5.0}, 0.3),
        summary_row("baseline", "POST /users", 32, {"baseline": 1.0}, 1.0),
    ]  # fmt: skip

    rows = cpu_ceiling(summary)

    # c=32 has no gateway POST row: nothing to compare, so no row.
    assert rows == [[8, "2.00", "3.50", "0.57x", "0.61x"]]


def test_ceiling_pairs_the_posts_of_users_not_the_lean_order_insert() -> None:
    summary = [
        summary_row("baseline", "POST /orders", 8, {"baseline": 0.5}, 1.0),
        summary_row("baseline", "POST /users", 8, {"baseline": 1.0}, 1.0),
        summary_row("gateway", "POST /orders", 8, {"edge-v1": 4.0}, 0.5),
        summary_row("gateway", "POST /users", 8, {"edge-v1": 2.0}, 0.6),
    ]

    assert cpu_ceiling(summary) == [[8, "1.00", "2.00", "0.50x", "0.60x"]]


def test_the_order_path_counts_both_edges_and_users_v2() -> None:
    from bench.report import total_cpu_ms

    order = {"cpu_ms_per_request": {"edge-v1": 2.0, "edge-v2": 2.0, "orders": 7.0,
                                    "users_v2": 7.0, "not a component": 9.0}}  # fmt: skip

    assert total_cpu_ms(order) == 18.0


def test_propagation_rounds_give_one_figure_per_round_per_row():
    def row(per_user: int, base: float) -> dict:
        figures = {f: base + i for i, f in enumerate(PROPAGATION_FIELDS)}
        return {"orders_per_user": per_user, **figures}

    rounds = [{"rows": [row(1, 1.0), row(10, 10.0)]}, {"rows": [row(1, 2.0), row(10, 20.0)]}]
    lines = propagation_rounds({"A": rounds, "B": []})

    assert lines[1] == (
        "  A   1 orders/user  p50_ms 1.0/2.0  p99_ms 2.0/3.0  "
        "end_to_end_p50_ms 3.0/4.0  end_to_end_p99_ms 4.0/5.0  put_p50_ms 5.0/6.0"
    )
    assert lines[2].startswith("  A  10 orders/user  p50_ms 10.0/20.0  ")
    assert len(lines) == 3  # a variant with no rounds adds nothing
