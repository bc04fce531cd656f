"""Kubernetes exec probe for a Nameko worker: `live` (this pod's broker link) or `ready <svc>`.

Mounted from a ConfigMap (kustomization.yaml), run with the worker's own environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
ESTABLISHED = "01"
READY_TIMEOUT_SECONDS = 5.0


def broker_port(amqp_uri: str) -> int:
    return urlsplit(amqp_uri).port or 5672


def has_connection_to(port: int, tables: tuple[Path, ...] = TCP_TABLES) -> bool:
    """True if this network namespace (the pod) has an established TCP link to `port`."""
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def service_answers(amqp_uri: str, service: str) -> str | None:
    """None if `service` answers its `ping` RPC (any replica); else why not."""
    # Imported here: `live` must stay cheap, and only `ready` needs nameko's wire code.
    from http_edge.rpc import BrokerUnavailable, NamekoRpcClient

    client = NamekoRpcClient(amqp_uri, READY_TIMEOUT_SECONDS)
    try:
        error = client.ping([service], READY_TIMEOUT_SECONDS, context={})[service]
    except BrokerUnavailable as exc:
        return str(exc)
    finally:
        client.discard()
    return None if error is None else f"{type(error).__name__}: {error}"


def main(argv: list[str]) -> int:
    amqp_uri = os.environ.get("AMQP_URI", "")
    if not amqp_uri or not argv or argv[0] not in {"live", "ready"}:
        print("usage: worker_probe.py live | ready <service> (with AMQP_URI set)", file=sys.stderr)
        return 2
    if not has_connection_to(broker_port(amqp_uri)):
        print("no established connection to the broker", file=sys.stderr)
        return 1
    if argv[0] == "ready":
        if len(argv) != 2:
            print("ready needs the service name", file=sys.stderr)
            return 2
        problem = service_answers(amqp_uri, argv[1])
        if problem:
            print(f"{argv[1]} does not answer ping: {problem}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
