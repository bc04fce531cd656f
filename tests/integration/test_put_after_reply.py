"""A PUT replies before its user_updated is confirmed (workers.runtime.after_reply), against
the real broker and nx-27017: the reply does not wait for the publish, the flag is cleared
only after the confirm, a failed publish is left to the relay, a stop waits for in-flight
publishes, and racing publishes leave the orders on the latest version."""

from __future__ import annotations

import uuid
from typing import Any

import eventlet
import pytest
from eventlet.event import Event
from nameko.standalone.rpc import ClusterRpcProxy
from pymongo import MongoClient, monitoring

from tests.support.audit import assert_invariants
from tests.support.data import ADDRESS, ITEMS
from tests.support.polling import wait_until
from workers.orders import OrdersService
from workers.runtime.documents import utcnow
from workers.runtime.tracing import TracedEventDispatcher
from workers.users import domain as users_domain
from workers.users.repository import UsersRepository
from workers.users_v1 import UsersV1
from workers.users_v2 import UsersV2

pytestmark = pytest.mark.integration


class Gate:
    """What the current test's dispatchers do: wait for `opened`, fail `failures` times,
    delay some versions; and what they saw."""

    def __init__(self) -> None:
        self.opened = Event()
        self.failures = 0
        self.delay: dict[int, float] = {}
        self.arrived: list[int] = []
        self.published: list[int] = []


GATE = Gate()


class GatedDispatcher(TracedEventDispatcher):
    def get_dependency(self, worker_ctx: Any) -> Any:
        dispatch = super().get_dependency(worker_ctx)

        def gated(event_type: str, event: dict[str, Any]) -> None:
            gate = GATE
            gate.arrived.append(event["version"])
            gate.opened.wait()
            eventlet.sleep(gate.delay.get(event["version"] % 2, 0))
            if gate.failures:
                gate.failures -= 1
                raise ConnectionError("broker unreachable (test)")
            dispatch(event_type, event)
            gate.published.append(event["version"])

        return gated


class GatedUsersV1(UsersV1):
    dispatch = GatedDispatcher(mandatory=True)


class GatedUsersV2(UsersV2):
    dispatch = GatedDispatcher(mandatory=True)


@pytest.fixture
def gate():
    global GATE
    GATE = Gate()
    yield GATE
    if not GATE.opened.ready():  # never leave a worker (or the relay timer) waiting
        GATE.opened.send()


@pytest.fixture
def gated(container_factory, service_config, gate):
    containers = {}
    for service_cls in (GatedUsersV1, GatedUsersV2, OrdersService):
        containers[service_cls.name] = container = container_factory(service_cls, service_config)
        container.start()
    return containers


@pytest.fixture
def rpc(service_config):
    with ClusterRpcProxy(service_config, timeout=20) as proxy:
        yield proxy


def user_with_order(rpc) -> tuple[dict, dict]:
    email = f"after-{uuid.uuid4().hex[:10]}@example.com"
    user = rpc.users_v1.create({"emails": [email], "deliveryAddress": ADDRESS})
    order = rpc.orders.create(
        {
            "userId": user["userId"],
            "items": ITEMS,
            "userEmails": user["emails"],
            "deliveryAddress": ADDRESS,
            "orderStatus": "shipping",
        }  # fmt: skip
    )
    return user, order


def street(index: int) -> dict[str, str]:
    return {**ADDRESS, "street": f"{index} After Reply St"}


def pending(database, user) -> bool:
    return "eventPendingSince" in database.users.find_one({"userId": user["userId"]})


def order_street(rpc, order) -> str:
    return rpc.orders.get(order["orderId"])["deliveryAddress"]["street"]


def test_the_reply_comes_back_while_the_publish_is_blocked(gated, gate, rpc, database):
    user, order = user_with_order(rpc)
    _, after = rpc.users_v1.update(user["userId"], {"deliveryAddress": street(1)})
    assert after["version"] == 2
    wait_until(lambda: gate.arrived == [2], what="the publish started after the reply")
    eventlet.sleep(0.2)
    assert gate.published == []
    assert pending(database, user)  # committed with its flag, not confirmed yet
    assert order_street(rpc, order) == ADDRESS["street"]

    gate.opened.send()
    wait_until(lambda: order_street(rpc, order) == "1 After Reply St")
    wait_until(lambda: not pending(database, user), what="flag cleared after the confirm")
    assert set(gate.published) == {2}


def test_a_failed_async_publish_leaves_the_flag_for_the_relay(gated, gate, rpc, database):
    gate.opened.send()
    gate.failures = 1
    user, order = user_with_order(rpc)
    rpc.users_v1.update(user["userId"], {"deliveryAddress": street(2)})
    wait_until(lambda: gate.arrived, what="the publish attempted")
    eventlet.sleep(0.3)
    assert gate.published == [] and pending(database, user)
    # the relay timer (every 5 s, for events pending over 2 s) sends it
    wait_until(lambda: order_street(rpc, order) == "2 After Reply St", timeout=20)
    wait_until(lambda: not pending(database, user))
    assert set(gate.published) == {2}  # both generations' relays may send it: harmless


def test_a_stop_waits_for_the_in_flight_publish(gated, gate, rpc, database):
    user, order = user_with_order(rpc)
    rpc.users_v1.update(user["userId"], {"deliveryAddress": street(3)})
    wait_until(lambda: gate.arrived == [2])
    stopping = eventlet.spawn(gated["users_v1"].stop)  # what `nameko run` does on SIGTERM
    eventlet.sleep(0.5)
    assert not stopping.dead, "the stop did not wait for the publish"
    gate.opened.send()
    stopping.wait()
    assert gate.published == [2]
    assert not pending(database, user)  # cleared before the database client closed
    wait_until(lambda: order_street(rpc, order) == "3 After Reply St")


def test_racing_async_publishes_leave_the_orders_on_the_latest_version(
    gated, gate, rpc, service_config, database
):
    gate.opened.send()
    gate.delay = {0: 0.05}  # even versions publish 50 ms late: the newer event goes first
    user, order = user_with_order(rpc)

    # one proxy per green thread (never shared), opened once so the two PUTs of a round overlap
    proxies = [ClusterRpcProxy(service_config, timeout=30) for _ in range(2)]
    services = [proxies[0].start().users_v2, proxies[1].start().users_v1]

    def update(index: int) -> dict:
        changes = {"deliveryAddress": street(index)}
        return services[index % 2].update(user["userId"], changes)[1]

    overtaken = 0
    for round_ in range(10):
        results = list(eventlet.GreenPool(2).imap(update, [2 * round_, 2 * round_ + 1]))
        latest = max(results, key=lambda after: after["version"])
        assert latest["version"] == 2 * round_ + 3

        def settled(latest=latest):
            stored = database.orders.find_one({"orderId": order["orderId"]})
            return stored["userVersion"] == latest["version"] and not pending(database, user)

        wait_until(settled, what=f"round {round_}: orders on v{latest['version']}")
        eventlet.sleep(0.1)  # the late, older event has landed by now: it must not win
        stored = database.orders.find_one({"orderId": order["orderId"]})
        assert stored["userVersion"] == latest["version"]
        assert stored["deliveryAddress"] == latest["deliveryAddress"]
        overtaken += gate.published[-2:] == sorted(gate.published[-2:], reverse=True)
    for proxy in proxies:
        proxy.stop()
    assert overtaken >= 5, f"publishes overtook each other in only {overtaken} of 10 rounds"
    assert_invariants(database, [user["userId"]])


class UpdateCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: Any) -> None:
        self.count += event.command_name == "update"

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


def _pending_users(database: Any, count: int) -> list[str]:
    now = utcnow()
    ids = [uuid.uuid4().hex for _ in range(count)]
    database.users.insert_many(
        [
            {
                "userId": i,
                "emails": [f"{i}@example.com"],
                "deliveryAddress": ADDRESS,
                "version": 2,
                "eventPendingSince": now,
            }
            for i in ids
        ]
    )
    return ids


def test_flag_clears_confirmed_close_together_are_one_command(service_config, database):
    ids = _pending_users(database, 4)
    users = [database.users.find_one({"userId": i}) for i in ids]
    # a newer update of the last user landed after its v2 event was published
    database.users.update_one({"userId": ids[-1]}, {"$inc": {"version": 1}})
    commands = UpdateCommands()
    client = MongoClient(service_config["MONGO_URI"], event_listeners=[commands])
    repo = UsersRepository(client[service_config["MONGO_DB"]])
    list(eventlet.GreenPool(4).imap(repo.mark_event_published, users))
    client.close()
    assert commands.count == 1
    flagged = {u["userId"] for u in database.users.find({"eventPendingSince": {"$exists": True}})}
    assert flagged == {ids[-1]}  # its newer version's own event still has to clear it


def test_the_relay_clears_the_flags_of_what_it_published_in_one_command(service_config, database):
    ids = _pending_users(database, 10)
    # the relay's publish of the last one fails: it keeps its flag for the next round
    sent: list[str] = []

    def dispatch(event_type: str, event: dict[str, Any]) -> None:
        if event["userId"] == ids[-1]:
            raise ConnectionError("broker unreachable (test)")
        sent.append(event["userId"])

    commands = UpdateCommands()
    client = MongoClient(service_config["MONGO_URI"], event_listeners=[commands])
    repo = UsersRepository(client[service_config["MONGO_DB"]])
    relayed = users_domain.relay_pending_events(repo, dispatch, older_than_seconds=-1)
    client.close()
    assert relayed == 9 and sorted(sent) == sorted(ids[:-1])
    # one write, not a clear per event (each would wait FlagClears' window: 10 x 20 ms)
    assert commands.count == 1
    flagged = {u["userId"] for u in database.users.find({"eventPendingSince": {"$exists": True}})}
    assert flagged == {ids[-1]}
