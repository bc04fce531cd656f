"""A real 3-node RabbitMQ cluster on this machine, each node in a network namespace of its own.

RabbitMQ's clustering guide, "A Cluster on a Single Machine": own node names, AMQP and
distribution ports, data and log dirs, one Erlang cookie, `rabbitmqctl join_cluster`. Each
node also gets its own network namespace (and epmd), joined to the others by a bridge, so a
test can cut one node off for real (`cut`: its link goes down, packets are dropped silently,
as in a partition) without touching the shared broker (rabbit@<host> on :5672).

Needs root (`ip netns`, a bridge); the tier fails, not skips, without it. ~1.3 GB RAM.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import amqp

from launch import broker_accounts
from launch.spec import RABBIT_BIN
from tests.support.net import free_port
from tests.support.polling import wait_until

# Short enough that a cut node is noticed in seconds (the default is 60 s), long enough for
# a loaded 2-core machine not to flap.
NET_TICKTIME = 10
BOOT_TIMEOUT = 120.0


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@dataclass
class Node:
    """One RabbitMQ node: its namespace, address, ports and directories."""

    index: int
    name: str  # rabbit node name, longnames: <short>@<address>
    namespace: str
    address: str
    port: int
    dist_port: int
    base: Path
    host_link: str  # the bridge side of its veth pair: down = cut off
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    def env(self, cookie_home: Path) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(cookie_home),  # .erlang.cookie: one for every node and rabbitmqctl
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_USE_LONGNAME": "true",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",  # not /etc/rabbitmq/rabbitmq-env.conf
        }


class RabbitCluster:
    """Three nodes joined into one cluster; any node can be stopped, started or cut off."""

    def __init__(self, base: Path, size: int = 3) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the cluster tier needs root: it creates network namespaces")
        self.base = base
        self.tag = uuid.uuid4().hex[:6]
        octet = int(self.tag[:2], 16)
        self.subnet = f"10.{232 + octet % 8}.{int(self.tag[2:4], 16)}"
        self.bridge = f"cb{self.tag}"
        self.cookie_home = base / "home"
        self.nodes = [
            Node(
                index=i,
                name=f"clu{self.tag}n{i + 1}@{self.subnet}.{i + 1}",
                namespace=f"clu-{self.tag}-{i + 1}",
                address=f"{self.subnet}.{i + 1}",
                port=free_port(),
                dist_port=free_port(),
                base=base / f"node{i + 1}",
                host_link=f"cv{self.tag}{i + 1}",
            )
            for i in range(size)
        ]
        self._network_up = False

    # -- network ----------------------------------------------------------------------
    def _create_network(self) -> None:
        self._network_up = True  # from the first command on, close() cleans up
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for node in self.nodes:
            peer = f"{node.host_link}p"
            ip("netns", "add", node.namespace)
            ip("link", "add", node.host_link, "type", "veth", "peer", "name", peer)
            ip("link", "set", peer, "netns", node.namespace)
            ip("link", "set", node.host_link, "master", self.bridge, "up")
            inside = ("netns", "exec", node.namespace, "ip")
            ip(*inside, "addr", "add", f"{node.address}/24", "dev", peer)
            ip(*inside, "link", "set", peer, "up")
            ip(*inside, "link", "set", "lo", "up")  # the node's own epmd listens there too

    def cut(self, index: int) -> None:
        """Cut node `index` off: its link goes down and packets to and from it are dropped
        silently (a partition as the others and the clients see it; the node keeps running)."""
        ip("link", "set", self.nodes[index].host_link, "down")

    def heal(self, index: int) -> None:
        ip("link", "set", self.nodes[index].host_link, "up")

    # -- nodes ------------------------------------------------------------------------
    def _write_config(self, node: Node) -> None:
        (node.base / "log").mkdir(parents=True, exist_ok=True)
        (node.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {node.address}:{node.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
            # As compose runs it (deploy/rabbitmq/cluster.conf).
            "cluster_partition_handling = pause_minority\n"
        )
        (node.base / "advanced.config").write_text(
            f"[{{kernel, [{{net_ticktime, {NET_TICKTIME}}}]}}].\n"
        )
        (node.base / "enabled_plugins").write_text("[].\n")

    def _spawn(self, node: Node) -> None:
        log = open(node.base / "server.out", "ab")  # noqa: SIM115 - the child keeps it
        node.process = subprocess.Popen(
            ["ip", "netns", "exec", node.namespace, str(RABBIT_BIN / "rabbitmq-server")],
            env=node.env(self.cookie_home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as one in close()
        )
        log.close()

    def _wait_amqp(self, node: Node, timeout: float = BOOT_TIMEOUT) -> None:
        def accepts() -> bool:
            if node.process is not None and node.process.poll() is not None:
                tail = (node.base / "server.out").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{node.name} exited with {node.process.returncode}: {tail}")
            try:
                connection = amqp.Connection(node.host, connect_timeout=1)
                connection.connect()
                connection.collect()
                return True
            except Exception:  # noqa: BLE001 - any failure means "not yet"
                return False

        wait_until(accepts, timeout, interval=0.3, what=f"{node.name} accepting AMQP")

    def ctl(self, index: int, *args: str, timeout: float = 60.0, check: bool = True) -> str:
        """`rabbitmqctl` (or another CLI: `tool`) aimed at node `index` only (`-n`), run
        inside its namespace."""
        return self.cli("rabbitmqctl", index, *args, timeout=timeout, check=check)

    def cli(
        self, tool: str, index: int, *args: str, timeout: float = 60.0, check: bool = True
    ) -> str:
        node = self.nodes[index]
        result = subprocess.run(
            ["ip", "netns", "exec", node.namespace, str(RABBIT_BIN / tool),
             "-n", node.name, "--longnames", *args],
            env=node.env(self.cookie_home), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} on {node.name}: {result.stderr}")
        return result.stdout

    def start(self) -> float:
        """Network, three nodes booted in parallel, nodes 2 and 3 joined to node 1; secs."""
        started = time.monotonic()
        self.cookie_home.mkdir(parents=True, exist_ok=True)
        cookie = self.cookie_home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        self._create_network()
        for node in self.nodes:
            self._write_config(node)
            self._spawn(node)
        for node in self.nodes:
            self._wait_amqp(node)
        first = self.nodes[0].name
        for node in self.nodes[1:]:
            self.ctl(node.index, "stop_app")
            self.ctl(node.index, "join_cluster", first)
            self.ctl(node.index, "start_app")
        self.wait_running(len(self.nodes))
        return time.monotonic() - started

    def running_nodes(self, via: int = 0) -> list[str]:
        status = json.loads(self.ctl(via, "cluster_status", "--formatter", "json"))
        return sorted(status["running_nodes"])

    def wait_running(self, count: int, via: int = 0, timeout: float = 60.0) -> None:
        wait_until(
            lambda: len(self.running_nodes(via)) == count, timeout, interval=0.5,
            what=f"{count} running nodes",
        )  # fmt: skip

    def stop_node(self, index: int, timeout: float = 60.0) -> None:
        """Orderly shutdown of one node (`rabbitmqctl stop`): clients see their connections
        close, the other nodes see it leave."""
        node = self.nodes[index]
        self.ctl(index, "stop", timeout=timeout, check=False)
        if node.process is not None:
            try:
                node.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait()

    def start_node(self, index: int) -> float:
        """Boot a stopped node again (same data dir: it rejoins the cluster); secs."""
        started = time.monotonic()
        self._spawn(self.nodes[index])
        self._wait_amqp(self.nodes[index])
        return time.monotonic() - started

    # -- accounts and queues ----------------------------------------------------------
    def hosts(self, order: Iterable[int] | None = None) -> list[str]:
        indexes = range(len(self.nodes)) if order is None else order
        return [self.nodes[i].host for i in indexes]

    def admin_uri(self, vhost: str) -> str:
        return failover_uri(self.hosts(), "guest", "guest", vhost)

    def provision(self, vhost: str, run_dir: Path) -> dict[str, str]:
        """The vhost with every component's least-privilege account (launch/broker_accounts,
        imported by rabbitmqctl: the nodes run no management plugin); component → failover
        URI listing all nodes. guest administers the vhost for the tests' own controls."""
        passwords = broker_accounts.stored_passwords(run_dir, vhost)
        prefix = broker_accounts.default_prefix(vhost)
        definitions = broker_accounts.definitions(vhost, passwords, prefix)
        path = run_dir / f"definitions-{vhost}.json"
        path.write_text(json.dumps(definitions))
        path.chmod(0o644)
        self.ctl(0, "import_definitions", str(path))
        path.unlink()
        self.ctl(0, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return {
            component: failover_uri(
                self.hosts(),
                broker_accounts.account_name(component, prefix),
                passwords[component],
                vhost,
            )
            for component in broker_accounts.COMPONENTS
        }

    def queues(self, vhost: str, via: int = 0) -> dict[str, dict]:
        """Each queue's type, leader, members, messages and consumers (`list_queues`)."""
        out = self.ctl(
            via, "list_queues", "-p", vhost, "name", "type", "leader", "members", "messages",
            "consumers",
            "--formatter", "json",
        )  # fmt: skip
        return {row["name"]: row for row in json.loads(out)}

    def leader_index(self, vhost: str, queue: str, via: int = 0) -> int:
        leader = self.queues(vhost, via)[queue]["leader"]
        return next(node.index for node in self.nodes if node.name == leader)

    # -- teardown ---------------------------------------------------------------------
    def close(self) -> None:
        """Stop every node, then remove what this cluster created (namespaces, links)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                with contextlib.suppress(Exception):  # teardown goes on
                    self.ctl(node.index, "stop", timeout=30, check=False)
                with contextlib.suppress(Exception):  # teardown goes on
                    node.process.wait(timeout=30)
            if node.process is not None and node.process.poll() is None:
                with contextlib.suppress(Exception):  # teardown goes on
                    os.killpg(node.process.pid, signal.SIGKILL)
        if not self._network_up:
            return
        for node in self.nodes:
            # Only processes inside our own namespace (its epmd, any straggler) are ours.
            pids = ip("netns", "pids", node.namespace, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(Exception):  # teardown goes on
                    os.kill(int(pid), signal.SIGKILL)
            ip("link", "del", node.host_link, check=False)
            ip("netns", "del", node.namespace, check=False)
        ip("link", "del", self.bridge, check=False)
        shutil.rmtree(self.base / "home", ignore_errors=True)


def failover_uri(hosts: Iterable[str], user: str, password: str, vhost: str) -> str:
    """kombu's failover form, which nameko and the edge both read: every node, in order."""
    return broker_accounts.failover_uri(hosts, user, password, vhost)


def starting_at(uri: str, first: int) -> str:
    """The same failover URI with node `first` listed first (a client connects there)."""
    parts = uri.split(";")
    return ";".join(parts[first:] + parts[:first])
