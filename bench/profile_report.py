"""The profile phase's figures without the tools: perf stat parsing and the report section."""

from __future__ import annotations

from typing import Any


def parse_perf_stat(text: str) -> dict[str, float]:
    """{event: value} from `perf stat -x ,` output (comment and unsupported lines skipped)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or line.startswith("#"):
            continue
        try:
            values[fields[2]] = float(fields[0])
        except ValueError:
            continue  # "<not supported>" / "<not counted>"
    return values


def per_request(counts: dict[str, dict[str, float]], requests: int) -> dict[str, dict]:
    """Context switches and CPU-ms (perf's task-clock) per request, per component."""
    n = max(requests, 1)
    return {
        name: {
            "context_switches": round(c.get("context-switches", 0.0) / n, 2),
            "cpu_ms": round(c.get("task-clock", 0.0) / n, 3),
            "migrations": round(c.get("cpu-migrations", 0.0) / n, 3),
        }
        for name, c in counts.items()
    }


def profile_markdown(profiles: dict[str, Any], top: int = 8) -> list[str]:
    """perf's per-request counts, then each py-spy profile's top functions by own samples."""
    lines: list[str] = []
    for name, data in profiles.items():
        if "per_request" in data:
            lines += [f"`perf stat` during {name.split('/')[0]} POST /users "
                      f"({data['requests']} requests), per request:", "",
                      "| component | context switches | CPU ms (task-clock) | migrations |",
                      "|---|---|---|---|"]  # fmt: skip
            lines += [
                f"| {component} | {f['context_switches']} | {f['cpu_ms']} | {f['migrations']} |"
                for component, f in data["per_request"].items()
            ]
            lines.append("")
    for name, data in profiles.items():
        if "self" not in data or not data["samples"]:
            continue
        lines += [f"py-spy `{name}` ({data['samples']} samples, `{data['file']}`), top own time:",
                  ""]  # fmt: skip
        lines += [f"- {share}% {frame}" for frame, share in data["self"][:top]]
        lines.append("")
    return lines
