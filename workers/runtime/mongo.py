"""Mongo DependencyProvider: one MongoClient per container, a repository per worker."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import pymongo
from nameko.extensions import DependencyProvider
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout, NetworkTimeout

from common import defaults
from workers.exceptions import StorageUnavailable
from workers.runtime.tracing import MongoCommandSpans

DEFAULT_MONGO_URI = defaults.MONGO_URI
DEFAULT_MONGO_DB = defaults.MONGO_DB
# Well under the RPC timeout, so a dead database surfaces as 503 rather than a 504.
DEFAULT_MONGO_TIMEOUT_MS = 3000
# The edge's /ready waits READY_TIMEOUT (2 s) for every ping: a ping bounded by
# MONGO_TIMEOUT_MS (3 s) would be "no answer" there instead of "database unreachable".
PING_TIMEOUT_SECONDS = 1.0

UNAVAILABLE_ERRORS = (ConnectionFailure, AutoReconnect, NetworkTimeout, ExecutionTimeout)

F = TypeVar("F", bound=Callable[..., Any])


def translate_storage_errors(method: F) -> F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except UNAVAILABLE_ERRORS as error:
            raise StorageUnavailable(
                f"The database is unreachable ({type(error).__name__})."
            ) from None

    return wrapper  # type: ignore[return-value]


def without_object_id(document: dict[str, Any] | None) -> dict[str, Any] | None:
    # Stripped here rather than by projection: mongomock's find_one_and_update returns None
    # when given one.
    if document is not None:
        document.pop("_id", None)
    return document


class MongoRepository:
    """Base for repositories: every public method turns connection loss into StorageUnavailable."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if callable(value) and not name.startswith("_"):
                setattr(cls, name, translate_storage_errors(value))

    @translate_storage_errors
    def ping(self) -> None:
        with pymongo.timeout(PING_TIMEOUT_SECONDS):
            self.database.command("ping")


def mongo_client(config: dict[str, Any]) -> MongoClient:
    timeout_ms = int(config.get("MONGO_TIMEOUT_MS") or DEFAULT_MONGO_TIMEOUT_MS)
    return MongoClient(
        config.get("MONGO_URI") or DEFAULT_MONGO_URI,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 3, 10000),
        connect=False,
        event_listeners=[MongoCommandSpans()],
    )


def database_name(config: dict[str, Any]) -> str:
    return config.get("MONGO_DB") or DEFAULT_MONGO_DB


class MongoStore(DependencyProvider):
    """Injects `repository_cls(database)`; the client lives as long as the container."""

    def __init__(self, repository_cls: type[MongoRepository]) -> None:
        self.repository_cls = repository_cls
        self.client: MongoClient | None = None

    def setup(self) -> None:
        config = self.container.config
        self.client = mongo_client(config)
        self.database = self.client[database_name(config)]

    def stop(self) -> None:
        self._close()

    def kill(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def get_dependency(self, worker_ctx: Any) -> MongoRepository:
        return self.repository_cls(self.database)
