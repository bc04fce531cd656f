"""The users service body shared by both generations: entrypoints only, rules in users_domain."""

from __future__ import annotations

from typing import Any

from nameko.timer import timer

from workers.exceptions import ServiceError
from workers.runtime.after_reply import AfterReply
from workers.runtime.identity import Caller
from workers.runtime.logs import RequestLogging
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.mongo import MongoStore
from workers.runtime.resilient_rpc import rpc  # survives a broker restart mid-reply
from workers.runtime.tracing import TracedEventDispatcher, Tracing
from workers.users import domain as users_domain
from workers.users.repository import UsersRepository

# How often, and after how long, committed-but-unpublished user_updated events are re-sent.
RELAY_INTERVAL_SECONDS = 5.0
RELAY_GRACE_SECONDS = 2.0


class UsersService:
    name: str
    generation: users_domain.Generation

    repository: UsersRepository = MongoStore(UsersRepository)
    # mandatory: an event no queue would take is reported, stays pending and is relayed later.
    dispatch = TracedEventDispatcher(mandatory=True)
    # A PUT's event publish and flag clear run after its reply is sent.
    after_reply = AfterReply()
    request_logging = RequestLogging()
    traces = Tracing()
    caller = Caller()
    metrics = WorkerMetrics()

    @rpc(expected_exceptions=ServiceError)
    def create(self, payload: Any) -> dict[str, Any]:
        return users_domain.create_user(self.repository, payload, self.generation, self.caller)

    @rpc(expected_exceptions=ServiceError, idempotent=True)
    def get(self, user_id: str) -> dict[str, Any]:
        return users_domain.get_user(self.repository, user_id)

    @rpc(expected_exceptions=ServiceError)
    def update(self, user_id: str, changes: Any) -> list[dict[str, Any]]:
        return users_domain.update_contact(
            self.repository,
            user_id,
            changes,
            self.generation,
            self.dispatch,
            self.caller,
            self.after_reply,
        )

    @rpc(expected_exceptions=ServiceError, idempotent=True)
    def ping(self) -> dict[str, str]:
        self.repository.ping()
        return {"service": self.name, "status": "ok"}

    @timer(interval=RELAY_INTERVAL_SECONDS)
    def relay_pending_events(self) -> int:
        return users_domain.relay_pending_events(
            self.repository, self.dispatch, RELAY_GRACE_SECONDS
        )
