"""`micro-rollout` against the real nginx gateway and real edge apps (RPC faked: the property is
the gateway's and the rollout's), under bounded load sent with tests.support.auth headers."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

from rollout.apply import LocalGateway, load_state
from rollout.cli import main
from rollout.record import read
from tests.support import ROOT
from tests.support.polling import wait_until
from tests.support.rollout import Load, gateway_on_app_edges, versions_of_users

FAST = ["--hold", "2", "--p99-floor-ms", "25"]


def rollout(gateway, *args: str, record) -> int:
    """Run micro-rollout in-process on `gateway`; `args` override the short FAST hold."""
    return main([*FAST, *args, *gateway.rollout_args(), "--record", str(record)], env=gateway.env)


def weight_in_force(gateway) -> int:
    return LocalGateway(gateway.run_dir, gateway.env).current()


def events(record) -> list[tuple[str, int]]:
    return [(line["event"], line["weight"]) for line in read(record)]


def test_healthy_v2_reaches_to_and_the_measured_split_follows(tmp_path):
    record = tmp_path / "r.jsonl"
    with gateway_on_app_edges(tmp_path, "100") as gateway:
        with Load(gateway.url).running() as load:
            code = rollout(
                gateway, "--to", "30", "--step", "35", "--min-requests", "40", record=record
            )
        assert code == 0
        assert weight_in_force(gateway) == 30
        assert load_state(tmp_path)["p_value"] == 30
        seen = versions_of_users(gateway.url, range(2000))

    share_v1 = sum(c["v1"] for c in seen.values()) / len(seen) * 100
    assert 27 <= share_v1 <= 33, share_v1  # ±3 points of P_VALUE 30, over 2000 users
    # a busy machine may make a step wait for --min-requests first: waiting is not failing
    assert [e for e in events(record) if e[0] not in ("start", "wait")] == [
        ("baseline", 100),
        ("step", 65),
        ("pass", 65),
        ("step", 30),
        ("pass", 30),
        ("done", 30),
    ]
    assert load.failures == []  # the reloads dropped nothing
    assert sum(load.versions.values()) > 200
    assert (tmp_path / "r.png").stat().st_size > 10_000


def test_v2_failing_5_percent_stops_at_the_first_step_and_rolls_back(tmp_path):
    record = tmp_path / "r.jsonl"
    v2_faults = {"EDGE_FAULT_ERROR_RATIO": "0.05"}
    with gateway_on_app_edges(tmp_path, "100", v2_faults=v2_faults) as gateway:
        with Load(gateway.url).running() as load:
            code = rollout(
                gateway, "--to", "0", "--step", "50", "--min-requests", "300",
                "--max-wait", "60", record=record,
            )  # fmt: skip
        assert code == 1
        assert weight_in_force(gateway) == 100

    lines = read(record)
    (failed,) = [line for line in lines if line["event"] == "fail"]
    assert failed["weight"] == 50 and "error ratio" in failed["reason"]
    assert failed["v2"]["error_ratio"] > 0.01 and failed["v1"]["errors"] == 0
    assert events(record)[-1] == ("rollback", 100)
    assert load.injected > 0 and load.failures == []


def test_v2_slower_by_200_ms_rolls_back_on_p99(tmp_path):
    record = tmp_path / "r.jsonl"
    with gateway_on_app_edges(tmp_path, "100", v2_faults={"EDGE_FAULT_DELAY_MS": "200"}) as gw:
        with Load(gw.url, threads=3).running() as load:
            code = rollout(gw, "--to", "0", "--step", "50", "--min-requests", "20", record=record)
        assert code == 1
        assert weight_in_force(gw) == 100

    (failed,) = [line for line in read(record) if line["event"] == "fail"]
    assert "p99" in failed["reason"]
    assert failed["v2"]["p99_ms"] >= 200 and failed["v1"]["p99_ms"] < 200
    assert load.failures == []


def test_too_little_traffic_waits_and_never_passes(tmp_path):
    record = tmp_path / "r.jsonl"
    with gateway_on_app_edges(tmp_path, "100") as gateway:
        code = rollout(
            gateway, "--to", "0", "--step", "50", "--hold", "1", "--max-wait", "3",
            "--min-requests", "200", record=record,
        )  # fmt: skip
        assert code == 3
        assert weight_in_force(gateway) == 100

    assert events(record)[1:] == [
        ("baseline", 100),
        ("step", 50),
        ("wait", 50),
        ("wait", 50),
        ("wait", 50),
        ("gave-up", 50),
        ("rollback", 100),
    ]


def test_a_waiting_step_passes_once_traffic_arrives(tmp_path):
    record = tmp_path / "r.jsonl"
    with gateway_on_app_edges(tmp_path, "100") as gateway, contextlib.ExitStack() as stack:
        load = Load(gateway.url, threads=2)

        def start_load_once_it_waits() -> None:
            # traffic arrives only after the step has been judged "wait" at least once
            wait_until(lambda: record.exists() and '"wait"' in record.read_text(), 30)
            stack.enter_context(load.running())

        threading.Thread(target=start_load_once_it_waits, daemon=True).start()
        code = rollout(
            gateway, "--to", "50", "--step", "50", "--hold", "1", "--max-wait", "30",
            "--min-requests", "50", record=record,
        )  # fmt: skip
    assert code == 0
    decisions = [e for e, _ in events(record) if e in ("wait", "pass")]
    assert decisions[0] == "wait" and decisions[-1] == "pass", decisions


def test_ctrl_c_leaves_the_last_good_weight(tmp_path):
    record = tmp_path / "r.jsonl"
    with gateway_on_app_edges(tmp_path, "100") as gateway, Load(gateway.url).running() as load:
        process = subprocess.Popen(
            [sys.executable, "-m", "rollout", "--to", "0", "--step", "25", "--hold", "2",
             "--min-requests", "20", *gateway.rollout_args(), "--record", str(record)],
            cwd=ROOT, env={**_inherited(), **gateway.env},
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        output = []
        deadline = time.monotonic() + 60
        for line in process.stdout:  # the second step applied: 75 was judged good
            output.append(line)
            if "P_VALUE 50 applied" in line or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        output += process.stdout.readlines()
        assert process.wait(timeout=30) == 130, "".join(output)
        assert weight_in_force(gateway) == 75
        assert json.loads((tmp_path / "p_value").read_text().splitlines()[1])["p_value"] == 75
    assert events(record)[-2:] == [("interrupted", 50), ("rollback", 75)]
    assert load.failures == []


def test_sticky_users_stay_put_and_a_weight_change_moves_only_its_share(tmp_path):
    with gateway_on_app_edges(tmp_path, "50") as gateway:
        one_user = versions_of_users(gateway.url, range(7, 8), repeat=50)["u7"]
        at_50 = versions_of_users(gateway.url, range(400))
        LocalGateway(gateway.run_dir, gateway.env).apply(25)
        at_25 = versions_of_users(gateway.url, range(400))

    assert sum(one_user.values()) == 50 and len(one_user) == 1  # one user, one generation
    assert all(sum(c.values()) == 1 for c in at_50.values())
    share_v1 = Counter(next(iter(c)) for c in at_50.values())["v1"] / 400 * 100
    assert 42 <= share_v1 <= 58, share_v1  # the share of users follows the weight
    moved = [(next(iter(at_50[u])), next(iter(at_25[u]))) for u in at_50 if at_50[u] != at_25[u]]
    print(f"50 -> 25: {len(moved)} of 400 users moved")
    assert set(moved) == {("v1", "v2")}  # consistent hashing: only towards the gaining side
    assert 17 <= len(moved) / 400 * 100 <= 33, len(moved)  # ~25 % of users: the weight moved


def test_without_stickiness_one_users_requests_follow_the_weight(tmp_path):
    with gateway_on_app_edges(tmp_path, "50") as gateway:
        LocalGateway(gateway.run_dir, {**gateway.env, "GATEWAY_STICKY_USERS": "off"}).apply(50)
        one_user = versions_of_users(gateway.url, range(7, 8), repeat=50)["u7"]
    assert one_user == Counter({"v1": 25, "v2": 25})  # weighted round-robin, per request


def test_twenty_reloads_under_load_fail_no_request(tmp_path):
    with gateway_on_app_edges(tmp_path, "50") as gateway:
        local = LocalGateway(gateway.run_dir, gateway.env)
        with Load(gateway.url, threads=6).running() as load:
            for weight in [30, 70] * 10:
                local.apply(weight)
                time.sleep(0.1)
    assert sum(load.versions.values()) > 200
    assert load.failures == []
    print(
        f"{sum(load.versions.values())} requests, {load.retried} resent after a keep-alive close"
    )


def _inherited() -> dict[str, str]:
    import os

    return dict(os.environ)
