"""The tier's stack runs as the components' own RabbitMQ accounts, never as the admin."""

from __future__ import annotations

import pytest
import requests

from launch import broker_accounts
from tests.support.broker import RABBIT_API
from tests.support.polling import wait_until

pytestmark = pytest.mark.reliability


def connected_users(vhost: str) -> set[str]:
    response = requests.get(f"{RABBIT_API}/api/vhosts/{vhost}/connections", timeout=10)
    response.raise_for_status()
    return {connection["user"] for connection in response.json()}


def test_every_process_connects_with_its_own_account(stack, vhost, http):
    # /ready is the edge's own probe (the gateway does not route it): it pings every worker.
    assert http.get(f"{stack.edge('v1')}/ready", timeout=30).status_code == 200
    prefix = broker_accounts.default_prefix(vhost.name)
    expected = {f"{prefix}{name}" for name in ("users_v1", "users_v2", "orders", "edge")}
    users = wait_until(lambda: (found := connected_users(vhost.name)) >= expected and found, 30)
    assert "guest" not in users, users
    assert users <= expected | {f"{prefix}operator"}, users
