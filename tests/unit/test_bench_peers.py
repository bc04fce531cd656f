"""bench/http_matrix.py and bench/report.py: the peer runs, their per-round ratios, the table."""

from __future__ import annotations

from pathlib import Path

from bench.config import BenchConfig
from bench.http_matrix import plan, summarize
from bench.report import peer_rows, targets

POST, PUT = "POST /users", "PUT /users/{id}"


def run(target: str, op: str, c: int, round_: int, rps: float) -> dict:
    return {"target": target, "op": op, "concurrency": c, "round": round_, "rps": rps,
            "latency_ms": {"p50": 1000 * c / rps, "p95": 2.0, "p99": 3.0},
            "errors": {}, "cpu_ms_per_request": {"edge-v1": 1.0}}  # fmt: skip


def test_a_cell_runs_the_peer_only_where_it_is_compared_and_odd_rounds_reverse() -> None:
    config = BenchConfig(quick=False)
    ids = Path("ids.txt")

    at_8 = [(target, op) for target, op, *_ in plan(config, 8, 0, ids)]
    at_64 = [(target, op) for target, op, *_ in plan(config, 64, 0, ids)]
    reversed_8 = [(target, op) for target, op, *_ in plan(config, 8, 1, ids)]

    assert at_8 == [("baseline", POST), ("gateway", POST), ("gateway", PUT),
                    ("peer", POST), ("peer", PUT)]  # fmt: skip
    assert ("peer", POST) not in at_64 and len(at_64) == 3
    assert reversed_8 == at_8[::-1]
    urls = {target: url for target, _, url, *_ in plan(config, 8, 0, ids)}
    assert urls["peer"] == config.peer_url != urls["gateway"]


def test_gateway_over_peer_is_taken_within_each_round_then_the_median() -> None:
    runs = [
        # round 0: gateway 400 vs peer 400 (1.0x); round 1: 600 vs 400 (1.5x); round 2: 1.2x
        run("baseline", POST, 8, 0, 800), run("gateway", POST, 8, 0, 400),
        run("peer", POST, 8, 0, 400),
        run("baseline", POST, 8, 1, 500), run("gateway", POST, 8, 1, 600),
        run("peer", POST, 8, 1, 400),
        run("baseline", POST, 8, 2, 600), run("gateway", POST, 8, 2, 480),
        run("peer", POST, 8, 2, 400),
        # PUT against the peer's PUT, not its POST
        run("gateway", PUT, 8, 0, 100), run("peer", PUT, 8, 0, 200),
    ]  # fmt: skip

    rows = {(r["target"], r["op"]): r for r in summarize(runs)}

    gateway = rows[("gateway", POST)]
    assert (gateway["ratio_vs_peer"], gateway["ratio_vs_peer_min"],
            gateway["ratio_vs_peer_max"]) == (1.2, 1.0, 1.5)  # fmt: skip
    # vs the lean POST of the same round: 0.5, 1.2, 0.8 -> median 0.8
    assert (gateway["ratio_vs_baseline_post"], gateway["ratio_min"],
            gateway["ratio_max"]) == (0.8, 0.5, 1.2)  # fmt: skip
    assert rows[("gateway", PUT)]["ratio_vs_peer"] == 0.5
    assert "ratio_vs_peer" not in rows[("peer", POST)]
    assert rows[("gateway", POST)]["rounds"] == 3


def test_peer_table_and_targets_show_the_ratios_with_their_range() -> None:
    runs = [
        run("baseline", POST, 1, 0, 400), run("gateway", POST, 1, 0, 200),
        run("peer", POST, 1, 0, 100),
        run("baseline", POST, 1, 1, 400), run("gateway", POST, 1, 1, 300),
        run("peer", POST, 1, 1, 100),
        run("gateway", PUT, 1, 0, 100), run("peer", PUT, 1, 0, 80),
        run("gateway", PUT, 1, 1, 100), run("peer", PUT, 1, 1, 80),
    ]  # fmt: skip
    summary = summarize(runs)

    rows = peer_rows(summary)
    found = targets({"http": {"summary": summary}})

    assert [row[:7] for row in rows] == [
        [POST, 1, "250", "100", "400", "2.50x (2.00-3.00)", "0.62x (0.50-0.75)"],
        [PUT, 1, "100", "80", "400", "1.25x (1.25-1.25)", "0.25x (0.25-0.25)"],
    ]
    peer_targets = {t["target"]: t for t in found if "peer" in t["target"]}
    assert peer_targets["gateway POST /users vs Nameko-native peer, c=1"]["met"] is True
    assert peer_targets["gateway PUT /users/{id} vs Nameko-native peer, c=1"]["met"] is False


ORDERS = "POST /orders"


def test_orders_run_lean_gateway_and_peer_at_the_order_concurrencies_only() -> None:
    config = BenchConfig(quick=False)
    ids, owners = Path("ids.txt"), Path("owners.txt")

    at_8 = plan(config, 8, 0, ids, owners)
    at_64 = [(target, op) for target, op, *_ in plan(config, 64, 0, ids, owners)]

    orders = [(target, script, args) for target, op, _, script, args in at_8 if op == ORDERS]
    assert [target for target, *_ in orders] == ["baseline", "gateway", "peer"]
    # Each order names an owner from the owners file, split over wrk's threads.
    assert all(script == "post_orders.lua" and args[1:] == [str(owners), "2"]
               for _, script, args in orders)  # fmt: skip
    assert ORDERS not in {op for _, op in at_64}
    reversed_8 = [(t, op) for t, op, *_ in plan(config, 8, 1, ids, owners)]
    assert reversed_8 == [(t, op) for t, op, *_ in at_8][::-1]


def test_gateway_orders_are_set_against_the_lean_order_insert_not_its_post_users() -> None:
    runs = [
        run("baseline", POST, 8, 0, 800), run("baseline", ORDERS, 8, 0, 400),
        run("gateway", ORDERS, 8, 0, 300), run("peer", ORDERS, 8, 0, 200),
        run("baseline", POST, 8, 1, 800), run("baseline", ORDERS, 8, 1, 500),
        run("gateway", ORDERS, 8, 1, 250), run("peer", ORDERS, 8, 1, 250),
    ]  # fmt: skip
    summary = summarize(runs)
    rows = {(r["target"], r["op"]): r for r in summary}

    gateway = rows[("gateway", ORDERS)]
    # 300/400 and 250/500 (not 300/800, 250/800): median 0.625
    assert (gateway["ratio_vs_baseline_post"], gateway["ratio_min"],
            gateway["ratio_max"]) == (0.625, 0.5, 0.75)  # fmt: skip
    assert (gateway["ratio_vs_peer"], gateway["ratio_vs_peer_min"]) == (1.25, 1.0)
    table = [row[:7] for row in peer_rows(summary) if row[0] == ORDERS]
    assert table == [[ORDERS, 8, "275", "225", "450", "1.25x (1.00-1.50)", "0.62x (0.50-0.75)"]]
    found = {t["target"]: t for t in targets({"http": {"summary": summary}})}
    lean_target = found["gateway POST /orders vs lean POST /orders, c=8"]
    assert (lean_target["measured"], lean_target["met"]) == ("0.62x (0.50-0.75)", False)
