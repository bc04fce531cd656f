"""The latency budget's arithmetic: per-request timestamps joined into segments, and its table.

Pure functions over the records bench.budget collects (client, edge probe, worker probe),
so they are unit-tested without a stack. Times are microseconds on one monotonic clock.
"""

from __future__ import annotations

from typing import Any

# (segment, where it starts, where it ends, what is in it); keys are the probes' names.
SEGMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("client -> edge in", "sent", "edge_in", "client write, gateway (nginx) in, gunicorn parse"),
    ("edge in -> publish", "edge_in", "publish_start", "Flask routing, JSON body, RPC client"),
    ("publish", "publish_start", "published", "request encode + socket write"),
    ("broker -> worker", "published", "worker_in", "RabbitMQ routing, delivery, consumer read"),
    ("worker in -> domain", "worker_in", "domain_start", "nameko spawn, injection, call log"),
    ("domain (no DB)", "domain_start", "domain_end", "schema, rules; minus the two rows below"),
    ("DB commands", "", "", "every MongoDB command of the call (pymongo's own timing)"),
    ("event publish", "", "", "user_updated dispatch, confirmed (PUT only)"),
    ("domain -> reply", "domain_end", "reply_start", "nameko result handling"),
    ("reply publish", "reply_start", "reply_end", "reply encode + socket write"),
    ("broker -> edge", "reply_end", "reply", "RabbitMQ, the edge thread's wake-up and read"),
    ("edge reply -> out", "reply", "edge_out", "decode, jsonify, access log line"),
    ("edge out -> client", "edge_out", "received", "gunicorn write, gateway out, client read"),
)
# The RPC hop of one request: everything between the edge starting to publish and the edge
# holding the decoded reply, except the domain's own work (the lean app does that too).
HOP = ("publish", "broker -> worker", "worker in -> domain", "domain -> reply", "reply publish",
       "broker -> edge")  # fmt: skip
HOP_ROW = "RPC hop (rows marked *)"
REQUIRED = ("sent", "received", "edge_in", "publish_start", "published", "reply", "edge_out",
            "worker_in", "domain_start", "domain_end", "reply_start", "reply_end")  # fmt: skip


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def join(
    client: list[dict[str, Any]],
    edge: dict[str, dict[str, Any]],
    worker: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """One merged record per client request that every probe saw completely."""
    merged = []
    for request in client:
        record = {**worker.get(request["rid"], {}), **edge.get(request["rid"], {}), **request}
        if all(key in record for key in REQUIRED):
            merged.append(record)
    return merged


def segment_ms(record: dict[str, Any]) -> dict[str, float]:
    """Each segment's duration for one request, in ms; they add up to the total."""
    db_ms, event_ms = record.get("db_us", 0) / 1000, record.get("event_us", 0) / 1000
    out: dict[str, float] = {}
    for name, start, end, _ in SEGMENTS:
        if name == "DB commands":
            out[name] = db_ms
        elif name == "event publish":
            out[name] = event_ms
        elif name == "domain (no DB)":
            out[name] = (record[end] - record[start]) / 1000 - db_ms - event_ms
        else:
            out[name] = (record[end] - record[start]) / 1000
    out[HOP_ROW] = sum(out[name] for name in HOP)
    out["total"] = (record["received"] - record["sent"]) / 1000
    return out


def budget(
    client: list[dict[str, Any]],
    edge: dict[str, dict[str, Any]],
    worker: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Median and p99 per segment over the joined requests, plus how many joined."""
    per_request = [segment_ms(r) for r in join(client, edge, worker)]
    rows = []
    names = [name for name, *_ in SEGMENTS] + [HOP_ROW, "total"]
    notes = {name: ("* " if name in HOP else "") + note for name, _, _, note in SEGMENTS}
    notes[HOP_ROW] = "per request: edge publish start -> reply read, minus the domain"
    for name in names:
        values = [r[name] for r in per_request]
        if not values:
            continue
        rows.append({
            "segment": name,
            "mean_ms": round(sum(values) / len(values), 3),
            "p50_ms": round(percentile(values, 50), 3),
            "p99_ms": round(percentile(values, 99), 3),
            "what": notes.get(name, "client send -> response read"),
        })  # fmt: skip
    db_calls = [r.get("db_n", 0) for r in join(client, edge, worker)]
    return {
        "requests": len(client),
        "joined": len(per_request),
        "db_commands_per_request": round(percentile(db_calls, 50), 1) if db_calls else None,
        "rows": rows,
    }


def totals(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "requests": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 3),
        "p99_ms": round(percentile(latencies_ms, 99), 3),
    }


def budget_markdown(result: dict[str, Any]) -> list[str]:
    """The budget tables: one per operation, segments side by side, then the c=1 totals."""
    lines: list[str] = []
    for op, data in result.get("budgets", {}).items():
        lines += [
            f"**{op}**, c=1: {data['joined']} of {data['requests']} requests seen by every "
            f"probe, {data['db_commands_per_request']} DB commands each (means add up to the "
            "total's mean; medians and p99s do not add).",
            "",
            "| segment | mean ms | p50 ms | p99 ms | what is in it |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['segment']} | {r['mean_ms']:.3f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
            f"| {r['what']} |"
            for r in data["rows"]
        ]
        lines.append("")
    if result.get("totals"):
        lines += ["Whole requests at c=1, same client, same run:", "",
                  "| path | requests | p50 ms | p99 ms |", "|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {path} | {t['requests']} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} |"
            for path, t in result["totals"].items()
        ]
        lines.append("")
    return lines
