"""bench/profile_report.py: perf stat's CSV turned into per-request figures and the report."""

from __future__ import annotations

from bench.profile_report import parse_perf_stat, per_request, profile_markdown

# `perf stat -x , -e task-clock,context-switches,cpu-migrations -p ...` as perf 6.x writes it.
PERF_CSV = """# started on Wed Dec  2 17:40:01 2026

10234.56,msec,task-clock,10234560000,100.00,1.023,CPUs utilized
41000,,context-switches,10234560000,100.00,4.006,K/sec
<not supported>,,cpu-migrations,0,100.00,,
"""


def test_perf_csv_gives_each_counted_event_and_skips_the_rest() -> None:
    assert parse_perf_stat(PERF_CSV) == {"task-clock": 10234.56, "context-switches": 41000.0}


def test_figures_are_divided_by_the_requests_of_the_window() -> None:
    counts = {"edge-v1": parse_perf_stat(PERF_CSV), "idle": {}}

    figures = per_request(counts, 4000)

    assert figures["edge-v1"] == {"context_switches": 10.25, "cpu_ms": 2.559, "migrations": 0.0}
    assert figures["idle"]["context_switches"] == 0.0
    assert per_request(counts, 0)["edge-v1"]["context_switches"] == 41000.0  # never / 0


def test_report_lists_perf_then_the_top_frames_of_each_profile() -> None:
    profiles = {
        "gateway/edge-v1": {"file": "profiles/x.txt", "samples": 10, "inclusive": [],
                            "self": [["send (socket.py)", 40.0], ["loads (json)", 10.0]]},
        "gateway/perf": {"requests": 4000, "per_request": per_request(
            {"edge-v1": parse_perf_stat(PERF_CSV)}, 4000)},
        "gateway/empty": {"file": "profiles/y.txt", "samples": 0, "inclusive": [], "self": []},
    }  # fmt: skip

    text = "\n".join(profile_markdown(profiles, top=1))

    assert "| edge-v1 | 10.25 | 2.559 | 0.0 |" in text
    assert "- 40.0% send (socket.py)" in text and "loads (json)" not in text
    assert "gateway/empty" not in text
    assert text.index("perf stat") < text.index("py-spy")
