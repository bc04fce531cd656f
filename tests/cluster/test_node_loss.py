"""A node of the 3-node cluster stops or is cut off under load: quorum queues keep every
message, clients fail over to the other nodes, the majority keeps serving."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import requests

from tests.cluster.conftest import WORKER_LOGS
from tests.cluster.load import HANG_LIMIT, UpdateLoad, worker_calls
from tests.support.audit import assert_invariants
from tests.support.auth import auth_headers
from tests.support.polling import wait_until
from tests.support.reliability import (
    ORDERS_QUEUES,
    create_user_with_orders,
    record_figure,
    stale_orders,
)

pytestmark = pytest.mark.cluster
USERS = 60


@pytest.fixture
def http():
    with requests.Session() as session:
        session.headers.update(auth_headers())
        yield session


def make_users(http, bases: list[str], count: int = USERS) -> list[str]:
    return [
        create_user_with_orders(http, bases[i % len(bases)], orders=1, tag="clu")[0]["userId"]
        for i in range(count)
    ]


def address(host: str | list[int]) -> str:
    """rabbitmqctl's JSON gives an IPv4 address as a string or as its four numbers."""
    return host if isinstance(host, str) else ".".join(str(part) for part in host)


def edge_node(cluster, vhost: str) -> int:
    """The node holding most of the edges' connections (the one whose loss they feel): each
    node listens on its own address, which a connection's `host` is."""
    rows = json.loads(cluster.ctl(0, "list_connections", "host", "user", "--formatter", "json"))
    at = {node.address: node.index for node in cluster.nodes}
    counts = Counter(at[address(row["host"])] for row in rows if row["user"] == f"{vhost}.edge")
    assert counts, f"no edge connection found: {rows}"
    return counts.most_common(1)[0][0]


def gateway_load_under_way(cluster, vhost: str, stack, http) -> tuple:
    """30 users, the node the edges lean on, and 600 updates through the gateway a quarter
    done: (gateway, users, that node, the load)."""
    gateway = [stack.gateway]
    users = make_users(http, gateway, count=30)
    victim = edge_node(cluster, vhost)
    load = UpdateLoad(gateway, users, updates=600).start()
    wait_until(lambda: load.done >= 150, timeout=120)
    return gateway, users, victim, load


def test_all_consumed_queues_are_quorum_on_three_nodes(cluster, vhost, stack) -> None:
    queues = cluster.queues(vhost)
    consumed = [*ORDERS_QUEUES, *(f"{q}.dead-letter" for q in ORDERS_QUEUES),
                "rpc-users_v1", "rpc-users_v2", "rpc-orders"]  # fmt: skip
    for name in consumed:
        assert queues[name]["type"] == "quorum", queues[name]
        assert len(queues[name]["members"]) == 3, queues[name]
    replies = [row for name, row in queues.items() if name.startswith("rpc.reply-")]
    assert replies and all(row["type"] == "classic" for row in replies), replies


# ~60 s on an idle machine: 1 000 updates, a node stop and its restart.
@pytest.mark.timeout(420)
def test_stopping_the_orders_queue_leader_during_1000_updates_loses_nothing(
    cluster, vhost, stack, database, http
) -> None:
    edges = [stack.edge("v1"), stack.edge("v2")]
    users = make_users(http, edges)
    queue = ORDERS_QUEUES[1]  # users_v2's events to orders (edges alternate v1 / v2)
    leader = cluster.leader_index(vhost, queue)
    load = UpdateLoad(edges, users, updates=1000).start()
    wait_until(lambda: load.done >= 300, timeout=120)
    at_stop, stopped_at = load.done, time.monotonic()
    cluster.stop_node(leader)
    survivor = (leader + 1) % 3
    wait_until(
        lambda: cluster.leader_index(vhost, queue, via=survivor) != leader,
        timeout=60, what="a new leader",
    )  # fmt: skip
    new_leader = cluster.leader_index(vhost, queue, via=survivor)
    load.join()
    restart_seconds = cluster.start_node(leader)

    wait_until(lambda: not stale_orders(database, users), timeout=60, interval=0.2)
    audit = assert_invariants(database, users)
    committed = sum(u["version"] - 1 for u in database.users.find({"userId": {"$in": users}}))
    statuses = load.statuses()
    first_bad, last_bad = load.failing_window(stopped_at)
    dead = cluster.queues(vhost, via=survivor)
    assert load.done == 1000
    assert set(statuses) <= {200, 503}, statuses  # no 500, no 504, no hang
    assert statuses[200] == 1000
    assert load.slowest() < HANG_LIMIT
    assert committed >= 1000  # a 503 after the commit (reply lost) still counts
    assert not stale_orders(database, users)
    assert new_leader != leader
    assert all(dead[f"{q}.dead-letter"]["messages"] == 0 for q in ORDERS_QUEUES), dead
    record_figure(
        "cluster_leader_stop",
        updates=1000, users=USERS, statuses=dict(statuses), updates_done_at_stop=at_stop,
        committed_versions=committed, stale=0, audited_users=len(users),
        audit_open=len(audit.open), failing_from_s=round(first_bad, 2),
        failing_until_s=round(last_bad, 2), node_restart_seconds=round(restart_seconds, 1),
        slowest_answer_seconds=round(load.slowest(), 2),
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_stopping_a_node_under_rpc_load_through_the_gateway_gives_only_503s(
    cluster, vhost, stack, database, http
) -> None:
    gateway, users, victim, load = gateway_load_under_way(cluster, vhost, stack, http)
    stopped_at = time.monotonic()
    cluster.stop_node(victim)
    stop_seconds = time.monotonic() - stopped_at
    load.join()
    statuses = load.statuses()
    first_bad, last_bad = load.failing_window(stopped_at)

    # Every request id ran `update` at most once, whatever the broker redelivered.
    runs = worker_calls(
        "".join(stack.log_text(name) for users in ("users_v1", "users_v2")
                for name in WORKER_LOGS[users]),
        "update",
    )  # fmt: skip
    twice = {rid: n for rid, n in runs.items() if n > 1}
    sent = {attempt.request_id for attempt in load.attempts}
    committed = sum(u["version"] - 1 for u in database.users.find({"userId": {"$in": users}}))
    wait_until(lambda: not stale_orders(database, users), timeout=60, interval=0.2)
    assert_invariants(database, users)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] == 600
    assert load.slowest() < HANG_LIMIT
    assert twice == {}
    # Each committed version is one run of one request we sent: nothing applied twice.
    assert sum(n for rid, n in runs.items() if rid in sent) == committed
    record_figure(
        "cluster_node_stop_gateway",
        updates=600, statuses=dict(statuses), stopped_node=victim + 1,
        node_stop_seconds=round(stop_seconds, 2), failing_from_s=round(first_bad, 2),
        failing_until_s=round(last_bad, 2), committed_versions=committed,
        slowest_answer_seconds=round(load.slowest(), 2),
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_a_node_cut_off_the_network_leaves_the_majority_serving(
    cluster, vhost, stack, database, http
) -> None:
    gateway, users, victim, load = gateway_load_under_way(cluster, vhost, stack, http)
    cut_at = time.monotonic()
    cluster.cut(victim)
    try:
        load.join()
        majority = [n.index for n in cluster.nodes if n.index != victim]
        queues = cluster.queues(vhost, via=majority[0])
        leaders = {name: queues[name]["leader"] for name in ORDERS_QUEUES}
        # While still cut off: new writes and their events flow through the majority.
        more = UpdateLoad(gateway, users, updates=60, clients=4).start()
        more.join()
        wait_until(lambda: not stale_orders(database, users), timeout=60, interval=0.2)
        served_while_cut = time.monotonic() - cut_at
    finally:
        cluster.heal(victim)
    assert_invariants(database, users)
    statuses = load.statuses()
    first_bad, last_bad = load.failing_window(cut_at)
    assert statuses[500] == 0 and set(statuses) <= {200, 503, 504}, statuses
    assert statuses[200] == 600
    assert set(more.statuses()) == {200}, more.statuses()  # once failed over: all served
    assert all(leader != cluster.nodes[victim].name for leader in leaders.values()), leaders
    record_figure(
        "cluster_node_cut",
        updates=600, statuses=dict(statuses), cut_node=victim + 1,
        failing_from_s=round(first_bad, 2), failing_until_s=round(last_bad, 2),
        after_failover_statuses=dict(more.statuses()),
        served_while_cut_seconds=round(served_while_cut, 1),
        slowest_answer_seconds=round(load.slowest(), 2),
    )  # fmt: skip
