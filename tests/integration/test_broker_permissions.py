"""Per-component RabbitMQ accounts on the real broker: the stack works with them, and each
account is refused what it does not own (every refusal first shown to succeed for the owner)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import amqp
import amqp.exceptions
import pytest
import requests

from http_edge.rpc import NamekoRpcClient
from launch import broker_accounts
from launch.broker_accounts import DEFAULT_EXCHANGE, RPC_EXCHANGE
from launch.runner import Runner
from launch.spec import Started, nameko_worker
from tests.support.broker import RABBIT_API, RABBIT_HOST, Action, Broker, Vhost, attempt
from tests.support.data import ADDRESS
from tests.support.polling import wait_until
from workers.runtime.queue_types import QUORUM

pytestmark = pytest.mark.integration

ORDERS_QUEUE = "rpc-orders"
V1_EVENTS_QUEUE = "evt-users_v1-user_updated--orders.handle_user_updated_v1"
V2_EVENTS_QUEUE = "evt-users_v2-user_updated--orders.handle_user_updated_v2"
DEAD_LETTERS = f"{V1_EVENTS_QUEUE}.dead-letter"


@pytest.fixture(scope="module")
def edge(broker, services) -> NamekoRpcClient:
    return NamekoRpcClient(broker.uris["edge"], timeout=10)


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def order_for(user: dict) -> dict:
    return {"userId": user["userId"], "items": [{"itemId": "sku-1", "quantity": 1, "price": 3.0}],
            "userEmails": user["emails"], "deliveryAddress": user["deliveryAddress"],
            "orderStatus": "under process"}  # fmt: skip


def forged_event() -> bytes:
    # The attack from issue 11: a contact nobody chose, pinned by a huge version.
    return json.dumps({"userId": str(uuid.uuid4()), "userEmails": [unique_email("forged")],
                       "deliveryAddress": ADDRESS, "version": 2**40,
                       "updatedAt": "2026-01-01T00:00:00Z"}).encode()  # fmt: skip


def publish(exchange: str, routing_key: str = "user_updated") -> Action:
    def action(channel: amqp.Channel) -> None:
        message = amqp.Message(forged_event(), content_type="application/json")
        channel.basic_publish(message, exchange=exchange, routing_key=routing_key)

    return action


def get(queue: str) -> Action:
    return lambda channel: channel.basic_get(queue)  # a message taken is requeued on close


def consume(queue: str) -> Action:
    def action(channel: amqp.Channel) -> None:
        channel.basic_cancel(channel.basic_consume(queue, callback=lambda message: None))

    return action


def declare_queue(queue: str) -> Action:
    # The arguments the workers' RPC consumer uses (quorum), so a permitted declare is a no-op.
    return lambda channel: channel.queue_declare(
        queue, durable=True, auto_delete=False, arguments=QUORUM
    )


def declare_exchange(exchange: str) -> Action:
    return lambda channel: channel.exchange_declare(
        exchange, "topic", durable=True, auto_delete=False
    )


def connected_users(broker: Broker) -> set[str]:
    response = requests.get(f"{RABBIT_API}/api/vhosts/{broker.vhost.name}/connections", timeout=10)
    response.raise_for_status()
    return {connection["user"] for connection in response.json()}


# -- the stack on its own accounts ------------------------------------------------------
def test_rpc_and_events_work_on_the_components_own_accounts(broker, services, edge):
    context = {"request_id": uuid.uuid4().hex}

    def call(service: str, method: str, *args: object) -> dict:
        return edge.call(service, method, *args, context=context)

    for users in ("users_v1", "users_v2"):
        user = call(users, "create", {"emails": [unique_email()], "deliveryAddress": ADDRESS})
        order = call("orders", "create", order_for(user))
        moved = unique_email("moved")
        call(users, "update", user["userId"], {"emails": [moved]})

        # The user_updated event, published on users' own account, reached orders.
        stored = order["orderId"]
        wait_until(lambda o=stored, e=[moved]: call("orders", "get", o)["userEmails"] == e)

    expected = {broker_accounts.account_name(c, broker_accounts.default_prefix(broker.vhost.name))
                for c in ("users_v1", "users_v2", "orders", "edge")}  # fmt: skip
    # The management API lists connections a few seconds late (its statistics interval).
    assert wait_until(lambda: connected_users(broker) >= expected, timeout=15)
    assert connected_users(broker) <= expected  # guest (or anyone else) connects nowhere


# -- refusals: each (intruder, action) first succeeds for the owner ----------------------
FORGED_PUBLISHES = [
    ("edge", "users_v1.events", "users_v1"),
    ("edge", "users_v2.events", "users_v2"),
    ("orders", "users_v1.events", "users_v1"),
    ("orders", "users_v2.events", "users_v2"),
    ("users_v1", "users_v2.events", "users_v2"),
    ("users_v2", "users_v1.events", "users_v1"),
]


@pytest.mark.parametrize(("intruder", "exchange", "owner"), FORGED_PUBLISHES)
def test_only_a_users_service_publishes_its_user_updated(broker, services, intruder, exchange,
                                                         owner):  # fmt: skip
    assert broker.attempt(owner, publish(exchange)) is None
    assert broker.attempt(intruder, publish(exchange)) == 403


def test_the_edge_cannot_drop_a_forged_event_into_the_orders_queue(broker, services):
    # The default exchange routes to any queue by name: workers need it for direct
    # reply-to replies, the edge does not.
    forge = publish("", routing_key=V1_EVENTS_QUEUE)
    assert broker.attempt("orders", forge) is None
    assert broker.attempt("edge", forge) == 403


def test_the_edge_publishes_rpc_requests_only(broker, services):
    request = publish(RPC_EXCHANGE, routing_key="orders.ping")
    assert broker.attempt("edge", request) is None
    assert broker.attempt("edge", publish("amq.topic", routing_key="orders.ping")) == 403
    assert DEFAULT_EXCHANGE not in broker_accounts.accounts()["edge"].write


READS = [
    ("edge", ORDERS_QUEUE, "orders"),
    ("edge", "rpc-users_v1", "users_v1"),
    ("edge", V1_EVENTS_QUEUE, "orders"),
    ("edge", DEAD_LETTERS, "orders"),
    ("users_v1", ORDERS_QUEUE, "orders"),
    ("users_v1", V1_EVENTS_QUEUE, "orders"),
    ("users_v2", V2_EVENTS_QUEUE, "orders"),
    ("orders", "rpc-users_v2", "users_v2"),
]


@pytest.mark.parametrize("read", [get, consume], ids=["get", "consume"])
@pytest.mark.parametrize(("intruder", "queue", "owner"), READS)
def test_no_account_reads_another_components_queue(broker, services, read, intruder, queue,
                                                   owner):  # fmt: skip
    assert broker.attempt(owner, read(queue)) is None
    assert broker.attempt(intruder, read(queue)) == 403


DECLARES = [
    ("edge", "queue", ORDERS_QUEUE, "orders"),
    ("edge", "queue", f"edge-{uuid.uuid4().hex[:8]}", "operator"),
    ("users_v1", "queue", ORDERS_QUEUE, "orders"),
    ("edge", "exchange", RPC_EXCHANGE, "operator"),
    ("users_v1", "exchange", RPC_EXCHANGE, "operator"),
    ("orders", "exchange", RPC_EXCHANGE, "operator"),
    ("edge", "exchange", "users_v1.events", "users_v1"),
    ("orders", "exchange", "users_v1.events", "users_v1"),
    ("orders", "exchange", "users_v2.events", "users_v2"),
    ("users_v1", "exchange", "users_v2.events", "users_v2"),
]


@pytest.mark.parametrize(("intruder", "kind", "name", "owner"), DECLARES)
def test_no_account_declares_what_it_does_not_own(broker, services, intruder, kind, name, owner):
    declare = declare_queue(name) if kind == "queue" else declare_exchange(name)
    assert broker.attempt(owner, declare) is None
    assert broker.attempt(intruder, declare) == 403


# -- deleting and purging, on a vhost of its own with no services running ----------------
@pytest.fixture
def bare(tmp_path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    broker.attempt("admin", declare_queue(ORDERS_QUEUE))
    yield broker
    broker.close()


def still_there(broker: Broker, kind: str, name: str) -> bool:
    if kind == "queue":
        check = lambda channel: channel.queue_declare(name, passive=True)  # noqa: E731
    else:
        check = lambda channel: channel.exchange_declare(name, "topic", passive=True)  # noqa: E731
    return broker.attempt("admin", check) is None


DELETES = [
    ("edge", "queue", ORDERS_QUEUE, "orders"),
    ("users_v1", "queue", ORDERS_QUEUE, "orders"),
    ("edge", "exchange", "users_v1.events", "users_v1"),
    ("orders", "exchange", "users_v1.events", "users_v1"),
    ("users_v1", "exchange", "users_v2.events", "users_v2"),
    ("edge", "exchange", RPC_EXCHANGE, "operator"),
    ("users_v1", "exchange", RPC_EXCHANGE, "operator"),
    ("orders", "exchange", RPC_EXCHANGE, "operator"),
]


@pytest.mark.parametrize(("intruder", "kind", "name", "owner"), DELETES)
def test_no_account_deletes_what_it_does_not_own(bare, intruder, kind, name, owner):
    def delete(channel: amqp.Channel) -> None:
        (channel.queue_delete if kind == "queue" else channel.exchange_delete)(name)

    assert bare.attempt(intruder, delete) == 403
    assert still_there(bare, kind, name)
    assert bare.attempt(owner, delete) is None
    assert not still_there(bare, kind, name)


@pytest.mark.parametrize("intruder", ["edge", "users_v1", "users_v2"])
def test_no_account_purges_another_components_queue(bare, intruder):
    purge = lambda channel: channel.queue_purge(ORDERS_QUEUE)  # noqa: E731
    assert bare.attempt(intruder, purge) == 403
    assert bare.attempt("orders", purge) is None


# -- provisioning itself ------------------------------------------------------------------
def test_provisioning_is_idempotent_reuses_passwords_and_rotates_them(bare, tmp_path):
    credentials = tmp_path / broker_accounts.CREDENTIALS_FILE
    assert credentials.stat().st_mode & 0o777 == 0o600
    again = broker_accounts.provision(RABBIT_API, bare.vhost.name, tmp_path)
    assert again == bare.uris  # same passwords, same URIs: a restarted stack reconnects
    ping = publish(RPC_EXCHANGE, routing_key="orders.ping")
    assert bare.attempt("edge", ping) is None

    old = bare.uris
    bare.uris = broker_accounts.provision(RABBIT_API, bare.vhost.name, tmp_path, rotate=True)
    assert set(bare.uris.values()).isdisjoint(old.values())
    assert bare.attempt("edge", ping) is None
    bare.uris = old
    with pytest.raises(amqp.exceptions.AccessRefused):  # the old password no longer logs in
        bare.attempt("edge", ping)


def test_a_user_of_the_same_name_that_is_not_ours_is_left_alone(bare, tmp_path):
    name = broker_accounts.account_name("edge", broker_accounts.default_prefix(bare.vhost.name))
    requests.delete(f"{RABBIT_API}/api/users/{name}", timeout=10).raise_for_status()
    requests.put(f"{RABBIT_API}/api/users/{name}", json={"password": uuid.uuid4().hex, "tags": ""},
                 timeout=10).raise_for_status()  # fmt: skip
    try:
        before = requests.get(f"{RABBIT_API}/api/users/{name}", timeout=10).json()

        with pytest.raises(broker_accounts.AccountConflict):
            broker_accounts.provision(RABBIT_API, bare.vhost.name, tmp_path, rotate=True)
        assert name not in broker_accounts.deprovision(RABBIT_API, bare.vhost.name)

        assert requests.get(f"{RABBIT_API}/api/users/{name}", timeout=10).json() == before
    finally:
        requests.delete(f"{RABBIT_API}/api/users/{name}", timeout=10)


def test_provisioning_leaves_the_administrator_as_it_was(bare, tmp_path):
    def guest() -> dict:
        return requests.get(f"{RABBIT_API}/api/users/guest", timeout=10).json()

    before = guest()
    broker_accounts.provision(RABBIT_API, bare.vhost.name, tmp_path, rotate=True)
    assert guest() == before
    assert bare.attempt("admin", declare_queue(ORDERS_QUEUE)) is None


# -- `nameko run` with config.yaml, as compose starts the workers ---------------------------
def test_nameko_run_takes_the_declare_flags_from_the_environment(broker, services, tmp_path):
    """compose sets DECLARE_*=false and an account's URI; config.yaml must turn them into
    nameko config, or the worker cannot start on an account that may not declare."""
    own = broker_accounts.component_env(broker.uris)["users_v1"]
    env = {**os.environ, **own, "MONGO_URI": "mongodb://127.0.0.1:9", "LOG_LEVEL": "WARNING"}
    log = tmp_path / "users_v1.log"
    runner = Runner(new_session=False, stop_timeout=15)
    runner.start(nameko_worker("users_v1", ["workers.users_v1"], env, log, Started()))
    try:
        # Two consumers on rpc-users_v1 now: the module's container and this process.
        def consumers() -> int:
            queue = requests.get(f"{RABBIT_API}/api/queues/{broker.vhost.name}/rpc-users_v1",
                                 timeout=10).json()  # fmt: skip
            return queue.get("consumers", 0)

        assert wait_until(lambda: consumers() == 2, timeout=30), log.read_text()
        assert "ACCESS_REFUSED" not in log.read_text()
    finally:
        runner.stop_all()


def test_compose_definitions_file_imports_and_logs_in_with_the_env_passwords(tmp_path):
    """What the rabbitmq-definitions job writes, imported as RabbitMQ imports it at boot."""
    vhost = Vhost()
    vhost.create()
    prefix = broker_accounts.default_prefix(vhost.name)  # users are broker-wide: not plain names
    env = {broker_accounts.password_variable(c): broker_accounts.generate_password()
           for c in broker_accounts.COMPONENTS}  # fmt: skip
    output = tmp_path / "definitions.json"
    try:
        broker_accounts.render(output, vhost.name, env, prefix=prefix)
        assert output.stat().st_mode & 0o777 == 0o644  # the broker reads it as its own user
        requests.post(f"{RABBIT_API}/api/definitions", json=json.loads(output.read_text()),
                      timeout=10).raise_for_status()  # fmt: skip

        def uri(component: str) -> str:
            user = broker_accounts.account_name(component, prefix)
            password = env[broker_accounts.password_variable(component)]
            return broker_accounts.amqp_uri(RABBIT_HOST, user, password, vhost.name)

        assert attempt(uri("users_v1"), publish("users_v1.events")) is None
        assert attempt(uri("edge"), publish(RPC_EXCHANGE, routing_key="orders.ping")) is None
        assert attempt(uri("edge"), publish("users_v1.events")) == 403
    finally:
        broker_accounts.deprovision(RABBIT_API, vhost.name, prefix=prefix)
        vhost.delete()
