"""Services for the graceful-shutdown tests, run by a real `nameko run` on the workers' own
entrypoints (workers.runtime): each call and event takes a while, and every execution is
appended to a ledger file, so a test can tell what ran once, twice or never.

`SlowUsers` answers as the users service an edge calls (USERS_SERVICE), `Orders` answers the
edge's /ready ping for orders.
"""

from __future__ import annotations

import os
from typing import Any

import eventlet

from workers.runtime.reliable_events import reliable_event_handler
from workers.runtime.resilient_rpc import rpc

SOURCE, EVENT = "slow_source", "tick"


def _record(kind: str, token: str) -> None:
    with open(os.environ["SLOW_LEDGER"], "a", encoding="utf-8") as ledger:
        ledger.write(f"{os.getpid()} {kind} {token}\n")


def _pause() -> float:
    return float(os.environ.get("SLOW_SECONDS", "1.5"))


class SlowUsers:
    name = os.environ.get("SLOW_SERVICE_NAME", "slow")

    @rpc
    def work(self, token: str) -> str:
        eventlet.sleep(_pause())
        _record("rpc", token)
        return token

    @rpc
    def get(self, user_id: str) -> dict[str, Any]:
        eventlet.sleep(_pause())
        _record("rpc", user_id)
        return {"userId": user_id}

    @rpc
    def ping(self) -> dict[str, str]:
        return {"service": self.name, "status": "ok"}

    @reliable_event_handler(SOURCE, EVENT)
    def handle_tick(self, payload: dict[str, Any]) -> None:
        eventlet.sleep(_pause())
        _record("event", payload["token"])


class Orders:
    name = "orders"

    @rpc
    def ping(self) -> dict[str, str]:
        return {"service": self.name, "status": "ok"}
