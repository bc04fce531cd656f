"""The local stack manager, the launch spec it starts from, and the one process runner."""

import os
import signal
import sys
import threading
import time
from dataclasses import replace

import pytest

from launch.runner import NotReady, Runner
from launch.settings import SettingsError, StackSettings
from launch.spec import HttpOk, PortOpen, RpcPing, build_stack
from scripts import stack
from tests.support.net import free_port
from tests.support.polling import wait_until


@pytest.mark.parametrize("value", ["-1", "101", "abc", "", "50.5"])
def test_bad_p_value_is_refused_with_the_renderers_message(value):
    with pytest.raises(SystemExit) as refusal:
        stack.check_settings({**stack.DEFAULTS, "P_VALUE": value})
    assert "P_VALUE must be an integer from 0 to 100" in str(refusal.value)


@pytest.mark.parametrize("value", ["0", "1", "50", "99", "100"])
def test_good_p_value_passes(value):
    stack.check_settings({**stack.DEFAULTS, "P_VALUE": value})


def test_environment_wins_over_dotenv_and_defaults(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("# comment\nMONGO_DB=from_dotenv\nP_VALUE=30\n")
    monkeypatch.setattr(stack, "ROOT", tmp_path)
    monkeypatch.setenv("P_VALUE", "70")
    monkeypatch.delenv("MONGO_DB", raising=False)
    env = stack.stack_env()
    assert env["P_VALUE"] == "70"
    assert env["MONGO_DB"] == "from_dotenv"
    assert env["GATEWAY_PORT"] == stack.DEFAULTS["GATEWAY_PORT"]


def test_local_mongo_is_started_only_for_a_local_uri_nobody_answers(monkeypatch):
    monkeypatch.setattr(stack, "port_open", lambda host, port: False)
    assert stack._local_mongo_wanted({"MONGO_URI": "mongodb://localhost:27017"})
    assert not stack._local_mongo_wanted({"MONGO_URI": "mongodb://db.internal:27017"})
    monkeypatch.setattr(stack, "port_open", lambda host, port: True)
    assert not stack._local_mongo_wanted({"MONGO_URI": "mongodb://127.0.0.1:27017"})


# -- the launch spec ---------------------------------------------------------------------------
PORTS = {"mongo": 27999, "edge-v1": 9101, "edge-v2": 9102, "gateway": 9100}


def spec(tmp_path, **kwargs):
    settings = StackSettings.from_env({"AMQP_URI": "amqp://operator@broker:5672/vh"})
    return {c.name: c for c in build_stack(settings, tmp_path, PORTS, **kwargs)}


def test_the_stack_starts_in_order_each_process_logging_under_the_run_dir(tmp_path):
    components = spec(tmp_path)
    assert list(components) == [
        "mongo", "db-setup", "users_v1", "users_v2", "orders", "edge-v1", "edge-v2", "gateway",
    ]  # fmt: skip
    assert [c.stage for c in components.values()] == [
        "database", "setup", "workers", "workers", "workers", "edges", "edges", "gateway",
    ]  # fmt: skip
    for component in components.values():
        assert component.log == tmp_path / "logs" / f"{component.name}.log"
    assert components["db-setup"].job and not components["mongo"].job
    assert not any(c.name == "mongo" for c in spec(tmp_path, mongo=False).values())


def test_ports_argv_and_readiness_come_from_the_port_map(tmp_path):
    components = spec(tmp_path)
    mongo, edge, gateway = components["mongo"], components["edge-v2"], components["gateway"]
    assert mongo.ports == (27999,) and mongo.argv[mongo.argv.index("-p") + 1] == "27999"
    assert mongo.argv[mongo.argv.index("--data-dir") + 1] == str(tmp_path / "mongo")
    assert edge.argv[-3:] == ("--bind", "127.0.0.1:9102", "http_edge.wsgi:app")
    assert edge.ready == HttpOk("http://127.0.0.1:9102/health")
    assert gateway.ready == HttpOk("http://127.0.0.1:9100/health")
    assert components["orders"].ready == RpcPing("amqp://operator@broker:5672/vh", ("orders",))
    # The gateway is rendered from the same ports.
    assert gateway.env["EDGE_V1_PORT"] == "9101" and gateway.env["GATEWAY_PORT"] == "9100"


def test_each_component_gets_its_own_environment_and_broker_account(tmp_path):
    uris = {"orders": "amqp://orders@broker/vh", "edge": "amqp://edge@broker/vh"}
    components = spec(
        tmp_path, amqp_uris=uris, component_env={"orders": {"DECLARE_RPC_EXCHANGE": "false"}}
    )
    assert components["orders"].env["AMQP_URI"] == "amqp://orders@broker/vh"
    assert components["orders"].env["DECLARE_RPC_EXCHANGE"] == "false"
    assert "DECLARE_RPC_EXCHANGE" not in components["users_v2"].env
    for edge in ("edge-v1", "edge-v2"):  # both edges log in with the one edge account
        assert components[edge].env["AMQP_URI"] == "amqp://edge@broker/vh"
    assert components["users_v1"].env["AMQP_URI"] == "amqp://operator@broker:5672/vh"
    assert components["users_v1"].ready == RpcPing("amqp://operator@broker:5672/vh", ("users_v1",))
    launched = spec(tmp_path, amqp_uris={"operator": "amqp://launcher@broker/vh"})
    assert launched["orders"].ready == RpcPing("amqp://launcher@broker/vh", ("orders",))
    assert {components[n].env["USERS_SERVICE"] for n in ("edge-v1", "edge-v2")} == {
        "users_v1", "users_v2",
    }  # fmt: skip
    for name in ("mongo", "db-setup", "gateway"):  # no broker account where none is needed
        assert "AMQP_URI" not in components[name].env
    assert "USERS_SERVICE" not in components["orders"].env
    with pytest.raises(TypeError):
        components["edge-v1"].env["USERS_SERVICE"] = "users_v2"  # read-only: no shared mutation


def test_a_bad_port_is_refused_before_anything_starts():
    with pytest.raises(SettingsError, match="EDGE_V1_PORT must be a TCP port number"):
        StackSettings.from_env({"EDGE_V1_PORT": "81o1"})


# -- the runner, on real processes ---------------------------------------------------------------
LISTEN = (
    "import socket, sys, time\n"
    "server = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
    "time.sleep(60)"
)
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ok', flush=True)\n"
    "time.sleep(60)"
)


def python(tmp_path, name, code, *args, ready=None):
    from launch.spec import Component, Started

    argv = (sys.executable, "-c", code, *map(str, args))
    return Component(name, argv, dict(os.environ), tmp_path / f"{name}.log", ready or Started())


def test_the_runner_waits_for_readiness_and_stops_what_it_started(tmp_path):
    port = free_port()
    runner = Runner(pid_dir=tmp_path / "pids")
    runner.start(python(tmp_path, "listener", LISTEN, port, ready=PortOpen("127.0.0.1", port)))
    process = runner.processes["listener"]
    assert PortOpen("127.0.0.1", port)() and process.poll() is None
    assert (tmp_path / "pids" / "listener.pid").read_text() == str(process.pid)
    runner.stop_all()
    assert process.returncode == -signal.SIGTERM
    assert not (tmp_path / "pids" / "listener.pid").exists()


def test_a_component_that_exits_fails_at_once_with_its_log(tmp_path):
    runner = Runner()
    started = time.monotonic()
    never = PortOpen("127.0.0.1", free_port())
    with pytest.raises(NotReady, match="exited with 3") as failure:
        runner.start(python(tmp_path, "crash", "print('boom'); raise SystemExit(3)", ready=never))
    assert "boom" in str(failure.value)
    assert time.monotonic() - started < 5


def test_stop_kills_what_ignores_sigterm(tmp_path):
    runner = Runner(stop_timeout=0.5)
    runner.start(python(tmp_path, "stubborn", STUBBORN))
    wait_until(lambda: "ok" in (tmp_path / "stubborn.log").read_text(), timeout=10)
    process = runner.processes["stubborn"]
    runner.stop("stubborn")
    assert process.returncode == -signal.SIGKILL


def test_up_stops_the_earlier_stages_when_a_later_one_fails(tmp_path):
    port = free_port()
    first = python(tmp_path, "first", LISTEN, port, ready=PortOpen("127.0.0.1", port))
    second = python(tmp_path, "second", "raise SystemExit(1)", ready=PortOpen("127.0.0.1", 1))
    runner = Runner()
    with pytest.raises(NotReady):
        runner.up([replace(first, stage="a"), replace(second, stage="b")])
    assert runner.processes == {}
    assert not PortOpen("127.0.0.1", port)()


# A leader whose child writes a mark if a SIGUSR1 reaches it (it must not: leader only).
# SIGUSR1, not nginx's SIGQUIT: Python dies of SIGQUIT with a core dump, which can be slow.
LEADER = (
    "import signal, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import signal, sys, time\\n"
    'signal.signal(signal.SIGUSR1, lambda *a: (open(sys.argv[1], "w").write("hit"), '
    'sys.exit(0)))\\nprint("child", flush=True)\\ntime.sleep(60)\', sys.argv[1]])\n'
    "print('ok', child.pid, flush=True)\n"
    "time.sleep(60)"
)


def test_a_leader_only_component_alone_gets_its_stop_signal_and_its_group_goes_after(tmp_path):
    mark = tmp_path / "child-got-sigusr1"
    component = replace(
        python(tmp_path, "leader", LEADER, mark), stop_signal=signal.SIGUSR1, leader_only=True
    )
    runner = Runner(pid_dir=tmp_path / "pids")
    runner.start(component)
    log = tmp_path / "leader.log"
    wait_until(lambda: "child" in log.read_text() and "ok" in log.read_text(), timeout=10)
    child = int(log.read_text().split("ok ")[1].split()[0])
    assert (tmp_path / "pids" / "leader.stop").read_text() == "SIGUSR1 leader"
    process = runner.processes["leader"]
    runner.stop("leader")
    assert process.returncode == -signal.SIGUSR1
    wait_until(lambda: not os.path.exists(f"/proc/{child}"), timeout=5)
    assert not mark.exists()  # the child never saw the leader's signal
    assert not (tmp_path / "pids" / "leader.stop").exists()


def test_stop_policies_survive_the_pid_files_for_make_down(tmp_path):
    from launch.runner import StopPolicy, read_stop_policy, stop_process_groups

    runner = Runner(pid_dir=tmp_path / "pids")
    quit_alone = replace(
        python(tmp_path, "q", "import time; time.sleep(60)"),
        stop_signal=signal.SIGUSR1, leader_only=True,
    )  # fmt: skip
    runner.start(quit_alone, python(tmp_path, "t", "import time; time.sleep(60)"))
    policies = {name: read_stop_policy(tmp_path / "pids" / f"{name}.pid") for name in ("q", "t")}
    assert policies == {"q": StopPolicy(signal.SIGUSR1, True), "t": StopPolicy()}
    processes = dict(runner.processes)
    for process in processes.values():  # reaped at once: a zombie would look alive to it
        threading.Thread(target=process.wait, daemon=True).start()
    stop_process_groups([processes["q"].pid, processes["t"].pid], policies=list(policies.values()))
    assert processes["q"].wait(5) == -signal.SIGUSR1
    assert processes["t"].wait(5) == -signal.SIGTERM
