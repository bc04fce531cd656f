"""`micro-rollout`: step P_VALUE towards --to while the gaining generation stays within
budget; `micro-rollout status`: the weight in force (docs/strangler-runbook.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kong.render import parse_p_value
from launch.prometheus import DEFAULT_PORT, metrics_ports
from rollout import record as records
from rollout.apply import Gateway, KongAdmin, LocalGateway, load_state, save_state
from rollout.measure import EdgeScrapes, GenerationStats, PrometheusQueries, Source
from rollout.policy import FAIL, PASS, Budget, candidate_of, judge, plan

EXIT_ROLLED_BACK, EXIT_USAGE, EXIT_NO_TRAFFIC, EXIT_INTERRUPTED = 1, 2, 3, 130


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micro-rollout",
        description="Move P_VALUE (% of /users to v1) step by step, rolling back on a breach.",
    )
    parser.add_argument("command", nargs="?", choices=["run", "status"], default="run")
    parser.add_argument("--to", type=int, help="the P_VALUE to reach (0 = everything on v2)")
    parser.add_argument("--step", type=int, default=10, help="P_VALUE points per step (10)")
    parser.add_argument("--hold", type=float, default=60, help="seconds each step holds (60)")
    parser.add_argument("--max-error-ratio", type=float, default=0.01, help="5xx share (0.01)")
    parser.add_argument(
        "--max-p99-ratio", type=float, default=1.5, help="p99 vs the other generation's (1.5)"
    )
    parser.add_argument(
        "--p99-floor-ms", type=float, default=25, help="p99s below this compare as this (25)"
    )
    parser.add_argument(
        "--min-requests", type=int, default=200, help="requests to judge a step on (200)"
    )
    parser.add_argument(
        "--max-wait", type=float, help="seconds a step may wait for traffic (5 x --hold)"
    )
    parser.add_argument("--prometheus", help="Prometheus base URL (default: scrape the edges)")
    parser.add_argument(
        "--edge-metrics",
        action="append",
        help="an edge's /metrics URL, repeatable (default: the local stack's, from "
        "$PROMETHEUS_PORT)",
    )
    parser.add_argument("--gateway", choices=["local", "kong"], default="local")
    parser.add_argument(
        "--kong-admin",
        default=env.get("KONG_ADMIN_URL")
        or f"http://127.0.0.1:{env.get('KONG_ADMIN_PORT') or 8001}",
        help="Kong admin API (default: $KONG_ADMIN_URL or http://127.0.0.1:$KONG_ADMIN_PORT)",
    )
    parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    parser.add_argument("--record", type=Path, help="JSON-lines record (under --run-dir)")
    parser.add_argument("--plot", type=Path, help="PNG (default: the record's name, .png)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    gateway: Gateway = (
        KongAdmin(args.kong_admin, env)
        if args.gateway == "kong"
        else LocalGateway(args.run_dir, env)
    )
    try:
        if args.command == "status":
            return status(gateway, args.run_dir)
        if args.to is None:
            raise ValueError("--to is required (the P_VALUE to reach)")
        return run(args, gateway, source_of(args, env))
    except (ValueError, RuntimeError, OSError) as error:
        print(f"micro-rollout: {error}", file=sys.stderr)
        return EXIT_USAGE


def source_of(args: argparse.Namespace, env: Mapping[str, str]) -> Source:
    if args.prometheus:
        return PrometheusQueries(args.prometheus)
    if args.edge_metrics:
        return EdgeScrapes(args.edge_metrics)
    ports = metrics_ports(int(env.get("PROMETHEUS_PORT") or DEFAULT_PORT))
    return EdgeScrapes([f"http://127.0.0.1:{ports[e]}/metrics" for e in ("edge-v1", "edge-v2")])


def status(gateway: Gateway, run_dir: Path) -> int:
    weight = gateway.current()
    print(f"P_VALUE {weight} in force on the {gateway.name}: {weight}% of /users to v1")
    state = load_state(run_dir)
    if state and state.get("p_value") != weight:
        print(f"warning: {run_dir}/p_value says {state['p_value']} ({state.get('gateway')})")
    return 0


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a rollout."""


def run(args: argparse.Namespace, gateway: Gateway, source: Source) -> int:
    to = parse_p_value(args.to)
    start = gateway.current()
    weights = plan(start, to, args.step)
    candidate = candidate_of(start, to)
    budget = Budget(
        args.max_error_ratio, args.max_p99_ratio, args.min_requests, args.p99_floor_ms / 1000
    )
    say(
        f"{gateway.name}: P_VALUE {start} -> {to} via {weights or 'nothing to do'}; "
        f"judging {candidate} every {args.hold:g} s"
    )
    if args.dry_run or not weights:
        return 0
    path = args.record or args.run_dir / "rollout" / time.strftime("rollout-%Y%m%d-%H%M%S.jsonl")
    record = records.Record(path)
    record.write("start", start, to=to, step=args.step, hold=args.hold, candidate=candidate)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        code = _steps(args, gateway, source, record, start, weights, candidate, budget)
    finally:
        signal.signal(signal.SIGTERM, previous)
        png = records.plot(path, args.plot or path.with_suffix(".png"))
        say(f"record {path}, plot {png}")
    return code


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted


def _steps(
    args: argparse.Namespace,
    gateway: Gateway,
    source: Source,
    record: records.Record,
    start: int,
    weights: list[int],
    candidate: str,
    budget: Budget,
) -> int:
    baseline = "v1" if candidate == "v2" else "v2"
    last_good, in_force = start, start
    max_wait = args.max_wait if args.max_wait is not None else 5 * args.hold
    try:
        # One hold at the weight in force first: the baseline's p99 to compare the candidate
        # with, even when a step leaves the baseline no traffic (the last step, 0 or 100).
        before = source.snapshot()
        time.sleep(args.hold)
        stats = source.window(before, source.snapshot())
        slowest_baseline = _baseline_p99(stats, baseline, budget)
        record.write("baseline", start, stats)
        say(f"  baseline at P_VALUE {start}: {_summary(stats)}")
        for weight in weights:
            _apply(gateway, args.run_dir, weight, record, "step")
            in_force = weight
            before, waited = source.snapshot(), 0.0
            while True:
                time.sleep(args.hold)
                waited += args.hold
                try:
                    stats = source.window(before, source.snapshot())
                except (OSError, RuntimeError, ValueError) as error:  # requests' errors too
                    reason = f"cannot measure: {error}"
                    record.write(FAIL, weight, reason=reason)
                    _rollback(gateway, args.run_dir, last_good, record, reason)
                    return EXIT_ROLLED_BACK
                now = _baseline_p99(stats, baseline, budget)
                slowest_baseline = max(filter(None, (now, slowest_baseline)), default=None)
                # Same window, same machine load: a fair comparison. Without baseline traffic
                # (the last step) only one across time is left: against its slowest p99 seen.
                verdict = judge(stats, candidate, budget, now or slowest_baseline)
                record.write(verdict.decision, weight, stats, reason=verdict.reason)
                say(
                    f"  P_VALUE {weight} after {waited:g} s: {verdict.decision}: "
                    f"{verdict.reason}; {_summary(stats)}"
                )
                if verdict.decision == PASS:
                    last_good = weight
                    break
                if verdict.decision == FAIL:
                    _rollback(gateway, args.run_dir, last_good, record, verdict.reason)
                    return EXIT_ROLLED_BACK
                if waited >= max_wait:
                    reason = f"no verdict after --max-wait {max_wait:g} s: {verdict.reason}"
                    record.write("gave-up", weight, reason=reason)
                    _rollback(gateway, args.run_dir, last_good, record, reason)
                    return EXIT_NO_TRAFFIC
    except (KeyboardInterrupt, Interrupted):
        say(f"interrupted at P_VALUE {in_force}")
        record.write("interrupted", in_force)
        _rollback(gateway, args.run_dir, last_good, record, "interrupted")
        return EXIT_INTERRUPTED
    record.write("done", last_good)
    say(f"done: P_VALUE {last_good} in force")
    return 0


def _apply(
    gateway: Gateway, run_dir: Path, weight: int, record: records.Record, event: str
) -> None:
    gateway.apply(weight)
    save_state(run_dir, gateway.name, weight)
    record.write(event, weight)
    say(f"P_VALUE {weight} applied on the {gateway.name}")


def _baseline_p99(
    stats: dict[str, GenerationStats], baseline: str, budget: Budget
) -> float | None:
    mine = stats[baseline]
    return mine.p99 if mine.requests >= budget.min_requests else None


def _rollback(
    gateway: Gateway, run_dir: Path, weight: int, record: records.Record, reason: str
) -> None:
    # A second Ctrl-C must not leave the gateway half-way: finish putting the weight back.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _apply(gateway, run_dir, weight, record, "rollback")
    finally:
        signal.signal(signal.SIGINT, previous)
    say(f"rolled back to P_VALUE {weight}: {reason}")


def _summary(stats: dict[str, GenerationStats]) -> str:
    parts = []
    for generation, s in stats.items():
        p99 = "-" if s.p99 is None else f"{s.p99 * 1000:.1f} ms"
        parts.append(f"{generation} {s.requests:.0f} req {s.error_ratio:.2%} 5xx p99 {p99}")
    return ", ".join(parts)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
