"""The orders service: entrypoints (`service.py`), rules (`domain.py`) and its MongoDB access
(`repository.py`). `nameko run workers.orders` finds OrdersService here."""

from workers.orders.service import DEFAULT_USERS_RPC_SERVICE, OrdersService

__all__ = ["DEFAULT_USERS_RPC_SERVICE", "OrdersService"]
