"""Targets of issue 6 checked against the results, and the markdown report."""

from __future__ import annotations

from typing import Any


def _row(
    summary: list[dict[str, Any]], target: str, op: str, concurrency: int
) -> dict[str, Any] | None:
    return next(
        (r for r in summary
         if r["target"] == target and r["op"] == op and r["concurrency"] == concurrency),
        None,
    )  # fmt: skip


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value; `met` is information, never a failure."""
    out: list[dict[str, Any]] = []
    summary = results.get("http", {}).get("summary", [])

    def add(name: str, measured: Any, goal: str, met: bool | None) -> None:
        out.append({"target": name, "measured": measured, "goal": goal, "met": met})

    for c in (8, 32):
        row = _row(summary, "gateway", "POST /users", c)
        if row:
            r = row["ratio_vs_baseline_post"]
            add(f"gateway POST /users throughput vs baseline, c={c}",
                f"{r:.2f}x (rounds {row['ratio_min']:.2f}-{row['ratio_max']:.2f})", ">= 1.0x (< 0.6x is a defect)",
                r >= 1.0)  # fmt: skip
        row = _row(summary, "gateway", "PUT /users/{id}", c)
        if row:
            r = row["ratio_vs_baseline_post"]
            add(f"gateway PUT /users/{{id}} (+event) vs baseline POST, c={c}",
                f"{r:.2f}x (rounds {row['ratio_min']:.2f}-{row['ratio_max']:.2f})", ">= 1.0x", r >= 1.0)  # fmt: skip
    for row in summary:
        if row["target"] == "gateway":
            ratio = row["p99_over_p50"]
            add(
                f"p99/p50 gateway {row['op']} c={row['concurrency']}",
                f"{ratio:.2f}",
                "<= 3",
                ratio is not None and ratio <= 3,
            )
    for row in results.get("propagation", {}).get("rows", []):
        if row["orders_per_user"] == 1:
            add(f"propagation to 1 order, {row['stored_orders']} stored: p50",
                f"{row['p50_ms']} ms", "<= 5 ms", row["p50_ms"] is not None and row["p50_ms"] <= 5)  # fmt: skip
            add(f"propagation to 1 order, {row['stored_orders']} stored: p99",
                f"{row['p99_ms']} ms", "<= 20 ms", row["p99_ms"] is not None and row["p99_ms"] <= 20)  # fmt: skip
    lists = results.get("orders_list", {})
    if "small" in lists and "large" in lists:
        small, large = (
            lists["small"]["c1"]["latency_ms"]["p50"],
            lists["large"]["c1"]["latency_ms"]["p50"],
        )
        add(f"first page, {lists['large']['stored_orders']} vs {lists['small']['stored_orders']} orders (p50, c=1)",
            f"{large / small:.2f}x ({large:.1f} vs {small:.1f} ms)", "<= 2x", large / small <= 2)  # fmt: skip
    scale = results.get("scale_out")
    if scale:
        ratio = scale["ratio_2_over_1"]
        add("event throughput, 2 vs 1 orders workers",
            f"{ratio:.2f}x ({scale['events_per_s_2']} vs {scale['events_per_s_1']} events/s)", ">= 1.7x",
            ratio is not None and ratio >= 1.7)  # fmt: skip
    return out


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# Bench run {meta['stamp']}{' (quick)' if meta['quick'] else ''}",
        "",
        f"Machine: {meta['machine']}. Database: nx-27017 (SQLite-backed MongoDB stand-in; absolute "
        "numbers are for it, not for MongoDB). Load: wrk, closed loop. Ratios compare runs made "
        "back to back in this run.",
        "",
        "## Targets",
        "",
        "| target | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        met = "yes" if t["met"] else ("no" if t["met"] is not None else "-")
        lines.append(f"| {t['target']} | {t['measured']} | {t['goal']} | {met} |")
    lines += [
        "",
        "## 1. POST / PUT /users: gateway vs direct Flask+pymongo baseline",
        "",
        "Median over rounds; ratio = this row's req/s / baseline POST req/s of the same round "
        "(range over rounds in brackets).",
        "",
        "| c | target | op | req/s (min-max) | p50 ms | p95 ms | p99 ms | p99/p50 | vs baseline POST | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("http", {}).get("summary", []):
        lines.append(
            f"| {r['concurrency']} | {r['target']} | {r['op']} | {r['rps']:.0f} ({r['rps_min']:.0f}-{r['rps_max']:.0f}) "
            f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['p99_over_p50']} "
            f"| {r['ratio_vs_baseline_post']:.2f}x ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | {r['errors']} |"
        )
    lines += ["", "CPU milliseconds spent per request, by component (median over rounds):", ""]
    comps = ["gateway", "edge-v1", "users_v1", "orders", "rabbitmq (shared)", "mongo", "baseline"]
    lines += [
        "| c | target | op | " + " | ".join(comps) + " | total |",
        "|---" * (len(comps) + 4) + "|",
    ]
    for r in results.get("http", {}).get("summary", []):
        cpu = r["cpu_ms_per_request"]
        total = sum(cpu.get(c, 0.0) for c in comps)
        lines.append(
            f"| {r['concurrency']} | {r['target']} | {r['op']} | "
            + " | ".join(f"{cpu.get(c, 0.0):.2f}" for c in comps)
            + f" | {total:.2f} |"
        )
    if "rpc" in results:
        lines += ["", "## 2. Pure RPC vs in-process (users_v1)", "",
                  "| op | load processes | in-process calls/s | RPC calls/s | RPC/in-process | p50 in-proc ms | p50 RPC ms | hop ms |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        rows = results["rpc"]["rows"]
        for inproc, rpc in zip(rows[::2], rows[1::2], strict=True):
            lines.append(
                f"| {rpc['op']} | {rpc['concurrency']} | {inproc['calls_per_s']} | {rpc['calls_per_s']} | "
                f"{rpc['rpc_over_inproc']:.2f}x | {inproc['p50_ms']} | {rpc['p50_ms']} | {rpc['rabbitmq_hop_p50_ms']} |"
            )
    if "propagation" in results:
        lines += ["", "## 3. Propagation: PUT /users/{id} returned -> all the user's orders updated", "",
                  "| orders/user | orders stored | samples | p50 ms | p99 ms | max ms | PUT p50 ms | poll query ms |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in results["propagation"]["rows"]:
            lines.append(
                f"| {r['orders_per_user']} | {r['stored_orders']} | {r['samples']} | {r['p50_ms']} | "
                f"{r['p99_ms']} | {r['max_ms']} | {r['put_p50_ms']} | {r['poll_query_ms']} |"
            )
    if "orders_list" in results:
        lines += ["", "## 4. GET /orders/?status=shipping, first page (100 orders)", "",
                  "| orders stored | p50 ms (c=1) | p99 ms (c=1) | req/s (c=8) | query alone on the DB, ms |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for key in ("small", "large"):
            r = results["orders_list"].get(key)
            if r:
                lat = r["c1"]["latency_ms"]
                lines.append(
                    f"| {r['stored_orders']} | {lat['p50']} | {lat['p99']} | {r['c8']['rps']} | {r['db_query_ms']} |"
                )
    if "scale_out" in results:
        s = results["scale_out"]
        lines += ["", "## 5. Scale-out: user_updated events/s, 1 vs 2 orders worker processes", "",
                  "| round | workers | events | seconds | events/s |", "|---|---|---|---|---|"]  # fmt: skip
        for i, r in enumerate(s["rounds"], start=1):
            lines.append(
                f"| {i} | {r['workers']} | {r['events']} | {r['seconds']} | {r['events_per_s']} |"
            )
        lines.append(f"\n2 workers / 1 worker: **{s['ratio_2_over_1']}x**")
    if "memory" in results:
        m = results["memory"]
        lines += ["", "## 6. Memory (RSS, MB; gunicorn and nginx include their workers)", "",
                  "| component | idle | under load (peak, c=64 runs) |", "|---|---|---|"]  # fmt: skip
        for name in m["idle"]:
            lines.append(f"| {name} | {m['idle'][name]} | {m['under_load'].get(name, '-')} |")
    lines.append("")
    return "\n".join(lines)
