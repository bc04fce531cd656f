"""orders: the orders Nameko service (entrypoints only; rules live in orders_domain)."""

from __future__ import annotations

from typing import Any

from nameko.rpc import RpcProxy

from workers.exceptions import ServiceError
from workers.orders import domain as orders_domain
from workers.orders.repository import OrdersRepository
from workers.runtime.identity import Caller
from workers.runtime.logs import RequestLogging
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.mongo import MongoStore
from workers.runtime.reliable_events import reliable_event_handler
from workers.runtime.resilient_rpc import (  # survives a broker restart mid-reply
    RpcReplyListener,
    rpc,
)
from workers.runtime.tracing import Tracing

DEFAULT_USERS_RPC_SERVICE = "users_v2"


class UsersRpc(RpcProxy):
    """RpcProxy whose target users generation comes from config (`USERS_RPC_SERVICE`)."""

    rpc_reply_listener = RpcReplyListener()

    def __init__(self) -> None:
        super().__init__(DEFAULT_USERS_RPC_SERVICE)

    def setup(self) -> None:
        self.target_service = self.container.config.get(
            "USERS_RPC_SERVICE", DEFAULT_USERS_RPC_SERVICE
        )
        super().setup()


class OrdersService:
    name = "orders"

    repository: OrdersRepository = MongoStore(OrdersRepository)
    users = UsersRpc()
    request_logging = RequestLogging()
    traces = Tracing()
    caller = Caller()
    metrics = WorkerMetrics()

    @rpc(expected_exceptions=ServiceError)
    def create(self, payload: Any) -> dict[str, Any]:
        return orders_domain.create_order(self.repository, payload, self.users.get, self.caller)

    @rpc(expected_exceptions=ServiceError, idempotent=True)
    def get(self, order_id: str) -> dict[str, Any]:
        return orders_domain.get_order(self.repository, order_id)

    @rpc(expected_exceptions=ServiceError, idempotent=True)
    def list(
        self, status: Any, limit: Any = 100, offset: Any = 0, user_id: Any = None
    ) -> list[dict[str, Any]]:
        return orders_domain.list_orders(self.repository, status, limit, offset, user_id)

    @rpc(expected_exceptions=ServiceError)
    def update_status(self, order_id: str, status: Any) -> list[dict[str, Any]]:
        return orders_domain.update_status(self.repository, order_id, status, self.caller)

    @rpc(expected_exceptions=ServiceError)
    def update_details(self, order_id: str, changes: Any) -> list[dict[str, Any]]:
        return orders_domain.update_details(self.repository, order_id, changes, self.caller)

    @rpc(expected_exceptions=ServiceError, idempotent=True)
    def ping(self) -> dict[str, str]:
        self.repository.ping()
        return {"service": self.name, "status": "ok"}

    @reliable_event_handler("users_v1", "user_updated")
    def handle_user_updated_v1(self, event: Any) -> int:
        return orders_domain.apply_user_updated(self.repository, event)

    @reliable_event_handler("users_v2", "user_updated")
    def handle_user_updated_v2(self, event: Any) -> int:
        return orders_domain.apply_user_updated(self.repository, event)
