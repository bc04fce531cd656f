"""bench/budget_report.py: joining the probes' timestamps into a c=1 latency budget."""

from __future__ import annotations

import pytest

from bench.budget_report import HOP_ROW, budget, budget_markdown, join, percentile, segment_ms


def timestamps(rid: str, start: int, step: int = 100) -> tuple[dict, dict, dict]:
    """Client, edge and worker records of one request; every mark `step` us after the last."""
    marks = [
        "sent", "edge_in", "publish_start", "published", "worker_in", "domain_start",
        "domain_end", "reply_start", "reply_end", "reply", "edge_out", "received",
    ]  # fmt: skip
    t = {mark: start + i * step for i, mark in enumerate(marks)}
    client = {"rid": rid, "sent": t["sent"], "received": t["received"]}
    edge = {"rid": rid, **{k: t[k] for k in ("edge_in", "publish_start", "published", "reply",
                                             "edge_out")}}  # fmt: skip
    worker = {"rid": rid, **{k: t[k] for k in ("worker_in", "domain_start", "domain_end",
                                               "reply_start", "reply_end")}}  # fmt: skip
    return client, edge, worker


def test_segments_add_up_to_the_total_and_db_and_event_come_out_of_the_domain() -> None:
    client, edge, worker = timestamps("r1", 1_000_000, step=100)
    worker.update(db_us=60, db_n=2, event_us=30)  # inside the 100 us domain span

    (record,) = join([client], {"r1": edge}, {"r1": worker})
    segments = segment_ms(record)

    assert segments["DB commands"] == pytest.approx(0.06)
    assert segments["event publish"] == pytest.approx(0.03)
    assert segments["domain (no DB)"] == pytest.approx(0.01)
    assert segments["broker -> worker"] == pytest.approx(0.1)
    parts = sum(v for k, v in segments.items() if k not in ("total", HOP_ROW))
    assert parts == pytest.approx(segments["total"]) == pytest.approx(1.1)
    # publish, broker -> worker, worker in -> domain, domain -> reply, reply publish,
    # broker -> edge: six steps of 0.1 ms; the domain, its DB and the HTTP legs are not hop
    assert segments[HOP_ROW] == pytest.approx(0.6)


def test_requests_a_probe_missed_are_left_out_and_counted() -> None:
    c1, e1, w1 = timestamps("a", 0)
    c2, e2, _ = timestamps("b", 10_000)  # the worker's line is missing
    c3, _, w3 = timestamps("c", 20_000)  # the edge's line is missing

    result = budget([c1, c2, c3], {"a": e1, "b": e2}, {"a": w1, "c": w3})

    assert (result["requests"], result["joined"]) == (3, 1)


def test_median_and_p99_per_segment_over_many_requests() -> None:
    clients, edges, workers = [], {}, {}
    for i in range(200):
        # request i takes (i + 1) us per step: the broker hop grows with i
        client, edge, worker = timestamps(f"r{i}", i * 100_000, step=i + 1)
        clients.append(client)
        edges[client["rid"]], workers[client["rid"]] = edge, worker

    result = budget(clients, edges, workers)
    rows = {r["segment"]: r for r in result["rows"]}

    hop = sorted((i + 1) / 1000 for i in range(200))
    assert rows["broker -> worker"]["p50_ms"] == round(percentile(hop, 50), 3) == 0.101
    assert rows["broker -> worker"]["p99_ms"] == round(percentile(hop, 99), 3) == 0.198
    assert rows["total"]["p50_ms"] == pytest.approx(11 * 0.101, abs=1e-3)
    assert rows["DB commands"]["p50_ms"] == 0.0  # no db_us recorded: none counted


def test_the_markdown_has_one_table_per_operation_and_the_totals() -> None:
    client, edge, worker = timestamps("r", 0)
    result = {
        "budgets": {"POST /users": budget([client], {"r": edge}, {"r": worker})},
        "totals": {"POST /users via gateway": {"requests": 1, "p50_ms": 1.1, "p99_ms": 1.1}},
    }

    text = "\n".join(budget_markdown(result))

    assert "**POST /users**, c=1: 1 of 1 requests" in text
    assert "| broker -> worker | 0.100 | 0.100 | 0.100 |" in text
    assert "| POST /users via gateway | 1 | 1.100 | 1.100 |" in text


def test_probe_lines_are_read_back_by_request_id_per_role(tmp_path, monkeypatch) -> None:
    from bench import probes

    monkeypatch.setenv("BENCH_PROBE_DIR", str(tmp_path))
    monkeypatch.setattr(probes, "_files", {})
    probes.write("edge", {"rid": "a", "edge_in": 1})
    probes.write("edge", {"rid": "b", "edge_in": 2})
    probes.write("worker", {"rid": "a", "worker_in": 3})
    probes.write("edge", {"rid": None, "edge_in": 4})  # a request without an id: not joinable
    for out in probes._files.values():
        out.flush()

    assert probes.read(tmp_path, "edge") == {"a": {"rid": "a", "edge_in": 1},
                                             "b": {"rid": "b", "edge_in": 2}}  # fmt: skip
    assert set(probes.read(tmp_path, "worker")) == {"a"}


def test_the_targets_report_the_hop_the_c1_gap_to_lean_and_the_cpu_ratio() -> None:
    from bench.report import targets

    clients, edges, workers = [], {}, {}
    for i in range(10):
        client, edge, worker = timestamps(f"r{i}", i * 100_000, step=100)
        clients.append(client)
        edges[client["rid"]], workers[client["rid"]] = edge, worker
    cpu = {"baseline": {"baseline": 2.0, "mongo": 1.0}, "gateway": {"edge-v1": 3.0, "mongo": 1.5}}
    ratios = {"ratio_vs_baseline_post": 0.5, "ratio_min": 0.5, "ratio_max": 0.5}
    summary = [
        {"target": t, "op": "POST /users", "concurrency": 8, "cpu_ms_per_request": cpu[t],
         "p99_over_p50": 2.0, **ratios}
        for t in ("baseline", "gateway")
    ]  # fmt: skip
    results = {
        "http": {"summary": summary},
        "budget": {
            "budgets": {"POST /users": budget(clients, edges, workers)},
            "totals": {
                "POST /users via gateway": {"requests": 10, "p50_ms": 5.0, "p99_ms": 9.0},
                "POST /users lean baseline": {"requests": 10, "p50_ms": 4.0, "p99_ms": 8.0},
            },
        },
    }

    found = {t["target"]: t for t in targets(results)}

    hop = found["RPC hop at c=1, p50 (latency budget)"]
    assert (hop["measured"], hop["met"]) == ("0.60 ms", False)
    gap = found["POST /users p50 at c=1, gateway vs lean (latency budget)"]
    assert (gap["measured"], gap["met"]) == ("5.00 vs 4.00 ms", False)
    ratio = found["gateway path CPU per POST /users vs lean, c=8"]
    assert (ratio["measured"], ratio["met"]) == ("1.50x (4.50 vs 3.00 ms)", True)
