"""One RabbitMQ account per component, allowed only what its nameko code paths do (SPEC §7):
one table, applied to a broker by `provision` and written for compose by `render`."""

from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from nameko.events import SERVICE_POOL, EventDispatcher, EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import RPC_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TEMPLATE, Rpc, RpcProxy
from nameko.standalone.events import get_event_exchange

from common.wire import RPC_EXCHANGE
from workers.orders import OrdersService
from workers.runtime.queue_types import QUORUM
from workers.runtime.reliable_events import dead_letter_names
from workers.runtime.resilient_rpc import DECLARE_RPC_EXCHANGE_CONFIG_KEY
from workers.users_v1 import UsersV1
from workers.users_v2 import UsersV2

SERVICES: tuple[type, ...] = (UsersV1, UsersV2, OrdersService)
EDGE = "edge"
OPERATOR = "operator"
COMPONENTS: tuple[str, ...] = (*(service.name for service in SERVICES), EDGE, OPERATOR)

# Marks the accounts this module made: an existing user without it is never changed.
OWNER_TAG = "micro-users-orders"
# The default exchange ("") is called amq.default in permission checks; replies to
# RabbitMQ's direct reply-to (the edge's RPC client) must be published there.
DEFAULT_EXCHANGE = "amq.default"
# nameko 2.14.1 names a service-pool handler's queue inline in EventHandler.setup.
HANDLER_QUEUE = "evt-{source}-{event}--{service}.{method}"
UUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NOTHING = "^$"  # RabbitMQ's idiom for "no resource": no queue or exchange has an empty name
EVERYTHING = ".*"
# nameko config for workers on a provisioned vhost: provisioning declared the shared
# exchanges, so no worker needs configure permission on one it does not own.
WORKER_CONFIG: dict[str, Any] = {
    "DECLARE_EVENT_EXCHANGES": False,
    DECLARE_RPC_EXCHANGE_CONFIG_KEY: False,
}
CREDENTIALS_FILE = Path("credentials") / "rabbitmq.json"
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"


class AccountConflict(RuntimeError):
    """A user with one of our names exists but was not created by this module."""


@dataclass(frozen=True)
class Account:
    """What one component may do on its vhost: RabbitMQ's three regexes plus user tags."""

    configure: str
    write: str
    read: str
    tags: tuple[str, ...] = ()

    def permissions(self) -> dict[str, str]:
        return {"configure": self.configure, "write": self.write, "read": self.read}


def _literal(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"unexpected character in broker name {name!r}")
    return name.replace(".", r"\.")


def _one_of(parts: Iterable[str]) -> str:
    unique = sorted(set(parts))
    return f"^({'|'.join(unique)})$" if unique else NOTHING


def _members(service_cls: type) -> list[Any]:
    return [value for _, value in inspect.getmembers(service_cls)]


def _entrypoints(service_cls: type) -> list[tuple[str, Any]]:
    """(method name, entrypoint) pairs: an unbound entrypoint does not know its method yet."""
    return [
        (method, entrypoint)
        for method, member in inspect.getmembers(service_cls)
        for entrypoint in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ())
    ]


def service_account(service_cls: type) -> Account:
    """The resources `service_cls`'s nameko extensions declare, bind, consume and publish."""
    name = service_cls.name
    configure: list[str] = []
    write: list[str] = []
    read: list[str] = []
    rpc = _literal(RPC_EXCHANGE)
    entrypoints = _entrypoints(service_cls)
    if any(isinstance(entrypoint, Rpc) for _, entrypoint in entrypoints):
        queue = _literal(RPC_QUEUE_TEMPLATE.format(name))
        configure.append(queue)
        write += [queue, rpc, _literal(DEFAULT_EXCHANGE)]  # bind; replies to both reply paths
        read += [queue, rpc]  # consume; bind's source
    handlers = [
        (method, entry) for method, entry in entrypoints if isinstance(entry, EventHandler)
    ]
    for method, handler in handlers:
        if handler.handler_type != SERVICE_POOL:
            raise ValueError(f"{name}: only service-pool handlers have fixed queue names")
        queue = HANDLER_QUEUE.format(
            source=handler.source_service,
            event=handler.event_type,
            service=name,
            method=method,
        )
        # The queue, its dead-letter exchange and dead-letter queue (declared, bound; a
        # queue.declare naming a DLX needs write on it).
        owned = [_literal(part) for part in (queue, *dead_letter_names(queue))]
        configure += owned
        write += owned
        read += owned
        read.append(_literal(get_event_exchange(handler.source_service, {}).name))  # bind source
    for dependency in _members(service_cls):
        if isinstance(dependency, EventDispatcher):
            exchange = _literal(get_event_exchange(name, {}).name)
            configure.append(exchange)
            write.append(exchange)
        if isinstance(dependency, RpcProxy):
            replies = _literal(RPC_REPLY_QUEUE_TEMPLATE.format(name, "")) + UUID_PATTERN
            configure.append(replies)
            write += [replies, rpc]  # bind; requests
            read += [replies, rpc]
    return Account(_one_of(configure), _one_of(write), _one_of(read))


def accounts() -> dict[str, Account]:
    """The permission table: component → account (docs/security.md shows it rendered)."""
    table = {service.name: service_account(service) for service in SERVICES}
    # The edge only publishes requests; replies reach it by direct reply-to (no permission).
    table[EDGE] = Account(NOTHING, _one_of([_literal(RPC_EXCHANGE)]), NOTHING)
    # People: inspect, replay dead letters, purge. Management UI for this vhost only.
    table[OPERATOR] = Account(EVERYTHING, EVERYTHING, EVERYTHING, ("management",))
    return table


def consumed_queues() -> dict[str, dict[str, Any]]:
    """Every durable queue the services consume → the arguments their workers declare it
    with (quorum; event queues name their dead-letter exchange). Kubernetes declares the
    same (deploy/k8s/base/rabbitmq.yaml): a different argument would be refused (406)."""
    queues: dict[str, dict[str, Any]] = {}
    for service_cls in SERVICES:
        for method, entrypoint in _entrypoints(service_cls):
            if isinstance(entrypoint, Rpc):
                queues[RPC_QUEUE_TEMPLATE.format(service_cls.name)] = dict(QUORUM)
            elif isinstance(entrypoint, EventHandler):
                queue = HANDLER_QUEUE.format(
                    source=entrypoint.source_service,
                    event=entrypoint.event_type,
                    service=service_cls.name,
                    method=method,
                )
                exchange, dead_letters = dead_letter_names(queue)
                queues[queue] = {**QUORUM, "x-dead-letter-exchange": exchange}
                queues[dead_letters] = dict(QUORUM)
    return queues


def shared_exchanges() -> list[str]:
    """Exchanges more than one component uses: declared by provisioning, never by a consumer."""
    events = [
        get_event_exchange(service.name, {}).name
        for service in SERVICES
        if any(isinstance(member, EventDispatcher) for member in _members(service))
    ]
    return [RPC_EXCHANGE, *events]


# -- credentials -----------------------------------------------------------------------
def account_name(component: str, prefix: str) -> str:
    return f"{prefix}{component}"


def default_prefix(vhost: str) -> str:
    # Users are broker-wide: on a shared broker each vhost's accounts get its name first.
    return "" if vhost == "/" else f"{vhost}."


def generate_password() -> str:
    return secrets.token_urlsafe(32)  # URL-safe: goes into AMQP URIs unquoted


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)  # never a half-written file holding the only passwords


def stored_passwords(run_dir: Path, vhost: str, rotate: bool = False) -> dict[str, str]:
    """The vhost's passwords from `run_dir` (mode 0600), generating any that are missing."""
    path = run_dir / CREDENTIALS_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    current = {} if rotate else dict(stored.get(vhost, {}))
    missing = [component for component in COMPONENTS if component not in current]
    for component in missing:
        current[component] = generate_password()
    if missing:
        stored[vhost] = current
        _write_private(path, json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return {component: current[component] for component in COMPONENTS}


def amqp_uri(host: str, user: str, password: str, vhost: str) -> str:
    return (
        f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}/{quote(vhost, safe='')}"
    )


def failover_uri(hosts: Iterable[str], user: str, password: str, vhost: str) -> str:
    """kombu's failover form `amqp://…@a/v;amqp://…@b/v` (nameko and the edge read it): a
    client connects to the first node that answers and, on failure, to the next."""
    return ";".join(amqp_uri(host, user, password, vhost) for host in hosts)


# -- definitions -----------------------------------------------------------------------
def definitions(vhost: str, passwords: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """RabbitMQ definitions (users, vhost, permissions, shared exchanges) for every account."""
    table = accounts()
    return {
        "users": [
            {
                "name": account_name(component, prefix),
                "password_hash": password_hash(passwords[component]),
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": [*table[component].tags, OWNER_TAG],
            }
            for component in COMPONENTS
        ],
        "vhosts": [{"name": vhost}],
        "permissions": [
            {"user": account_name(component, prefix), "vhost": vhost, **account.permissions()}
            for component, account in table.items()
        ],
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": "topic",  # what nameko declares (rpc.py, standalone/events.py)
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in shared_exchanges()
        ],
    }


# -- a running broker's management API -------------------------------------------------
class ManagementApi:
    """The few RabbitMQ management calls provisioning needs, as an administrator."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.auth = auth
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, f"{self.url}/api/{path}", auth=self.auth, timeout=self.timeout, **kwargs
        )

    def user_tags(self, name: str) -> list[str] | None:
        """The user's tags, or None if there is no such user."""
        response = self.request("GET", f"users/{quote(name, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        tags = response.json()["tags"]
        return tags.split(",") if isinstance(tags, str) else list(tags)  # 3.10 vs 3.13


def provision(
    api_url: str,
    vhost: str,
    run_dir: Path,
    *,
    admin: tuple[str, str] | None = None,
    amqp_host: str | Sequence[str] = "127.0.0.1:5672",
    prefix: str | None = None,
    rotate: bool = False,
) -> dict[str, str]:
    """Create or update every account on `vhost` (idempotent); returns component → AMQP URI.

    `admin` (or the credentials in `api_url`) must be a RabbitMQ administrator. Passwords
    live in `run_dir`/credentials/rabbitmq.json and are reused; `rotate` replaces them
    (connections already open keep working until they reconnect). Several `amqp_host`s
    (a cluster's nodes) give failover URIs.
    """
    prefix = default_prefix(vhost) if prefix is None else prefix
    api = ManagementApi(api_url, admin)
    for component in COMPONENTS:
        name = account_name(component, prefix)
        tags = api.user_tags(name)
        if (admin and name == admin[0]) or (tags is not None and OWNER_TAG not in tags):
            raise AccountConflict(f"RabbitMQ user {name!r} exists and is not ours: not changed")
    passwords = stored_passwords(run_dir, vhost, rotate=rotate)
    response = api.request("POST", "definitions", json=definitions(vhost, passwords, prefix))
    if not response.ok:
        raise RuntimeError(f"definitions import refused: {response.status_code} {response.text}")
    hosts = [amqp_host] if isinstance(amqp_host, str) else list(amqp_host)
    return {
        component: failover_uri(
            hosts, account_name(component, prefix), passwords[component], vhost
        )
        for component in COMPONENTS
    }


def component_env(uris: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Environment variables per component for `nameko run --config config.yaml` and the
    edges: its own AMQP_URI and, for workers, WORKER_CONFIG as config.yaml reads it."""
    flags = {key: str(value).lower() for key, value in WORKER_CONFIG.items()}
    workers = {service.name for service in SERVICES}
    return {
        component: {"AMQP_URI": uri, **(flags if component in workers else {})}
        for component, uri in uris.items()
    }


def deprovision(
    api_url: str, vhost: str, *, admin: tuple[str, str] | None = None, prefix: str | None = None
) -> list[str]:
    """Delete this vhost's accounts (only users carrying OWNER_TAG); returns their names."""
    prefix = default_prefix(vhost) if prefix is None else prefix
    api = ManagementApi(api_url, admin)
    deleted = []
    for component in COMPONENTS:
        name = account_name(component, prefix)
        if OWNER_TAG in (api.user_tags(name) or ()):
            api.request("DELETE", f"users/{quote(name, safe='')}").raise_for_status()
            deleted.append(name)
    return deleted


# -- command line (compose's render job, operators) ------------------------------------
COOKIE_VARIABLE = "RABBITMQ_ERLANG_COOKIE"


def password_variable(component: str) -> str:
    return f"RABBITMQ_{component.upper()}_PASSWORD"


def render(output: Path, vhost: str, env: Mapping[str, str], prefix: str = "") -> None:
    """Write the definitions file from passwords in `env`; hashes only, readable by the
    broker's own user (RabbitMQ reads it at boot as `rabbitmq`)."""
    missing = [password_variable(c) for c in COMPONENTS if not env.get(password_variable(c))]
    if missing:
        raise SystemExit(f"render: set {', '.join(missing)} (see .env.example)")
    passwords = {component: env[password_variable(component)] for component in COMPONENTS}
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".tmp")
    temporary.write_text(json.dumps(definitions(vhost, passwords, prefix), indent=2) + "\n")
    temporary.chmod(0o644)
    os.replace(temporary, output)


def markdown_table() -> str:
    lines = ["| account | configure | write | read | tags |", "|---|---|---|---|---|"]
    for component, account in accounts().items():
        cells = [f"`{value}`" for value in account.permissions().values()]
        tags = ", ".join(account.tags) or "—"
        lines.append(f"| {component} | {' | '.join(cells)} | {tags} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="python -m launch.broker_accounts")
    commands = parser.add_subparsers(dest="command", required=True)
    apply = commands.add_parser("provision", help="create or update the accounts on a broker")
    apply.add_argument(
        "--api",
        default=env.get("RABBIT_API_URI", "http://127.0.0.1:15672"),
        help="management API URL with an administrator's credentials (or $RABBIT_API_URI)",
    )
    apply.add_argument("--vhost", default="/")
    apply.add_argument("--run-dir", type=Path, default=Path(".run"))
    apply.add_argument(
        "--amqp-host",
        default="127.0.0.1:5672",
        help="host:port of the broker, or of every cluster node comma-separated (failover)",
    )
    apply.add_argument("--rotate", action="store_true", help="generate new passwords")
    written = commands.add_parser("render", help="write compose's definitions file from env")
    written.add_argument("--output", type=Path, required=True)
    written.add_argument("--vhost", default="/")
    commands.add_parser("env", help="print fresh password (and Erlang cookie) lines for .env")
    commands.add_parser("table", help="print the permission table as markdown")
    args = parser.parse_args(argv)
    if args.command == "provision":
        uris = provision(
            args.api,
            args.vhost,
            args.run_dir,
            amqp_host=args.amqp_host.split(","),
            rotate=args.rotate,
        )
        print(f"accounts on vhost {args.vhost!r}: {', '.join(uris)} (passwords in {args.run_dir})")
    elif args.command == "render":
        render(args.output, args.vhost, env)
    elif args.command == "env":
        print("\n".join(f"{password_variable(c)}={generate_password()}" for c in COMPONENTS))
        print(f"{COOKIE_VARIABLE}={secrets.token_hex(32)}")  # compose's cluster (docker/)
    else:
        sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
