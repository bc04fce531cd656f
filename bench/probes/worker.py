"""users_v1 with budget timestamps: `nameko run ... bench.probes.worker:ProbedUsersV1`.

The unchanged service class and runtime, patched in this process only (bench.budget):
request delivered to the consumer, domain function start/end, every MongoDB command's
duration (a pymongo CommandListener), event dispatch, reply publish start/end. Keyed by
the request id the edge sends in nameko's context headers. Cost: a few dict stores per
call and per command, one line written per call.
"""

from __future__ import annotations

from typing import Any

import eventlet
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider
from pymongo import monitoring

from bench.probes import now_us, write
from workers.runtime import resilient_rpc
from workers.users import domain as users_domain
from workers.users_v1 import UsersV1

REQUEST_ID_HEADER = "nameko.request_id"
_pending: dict[str, dict[str, Any]] = {}  # request id -> its record, until the reply
_by_thread: dict[int, dict[str, Any]] = {}  # greenthread -> the record its domain call fills


def _request_id(message: Any) -> str | None:
    return (message.headers or {}).get(REQUEST_ID_HEADER)


class CommandTimes(monitoring.CommandListener):
    """Adds each command's own duration (pymongo measures it) to the calling call's record."""

    def started(self, event: Any) -> None:
        pass

    def succeeded(self, event: Any) -> None:
        self._add(event)

    def failed(self, event: Any) -> None:
        self._add(event)

    def _add(self, event: Any) -> None:
        record = _by_thread.get(id(eventlet.getcurrent()))
        if record is not None:
            record["db_us"] = record.get("db_us", 0) + event.duration_micros
            record["db_n"] = record.get("db_n", 0) + 1


def _timed_domain(fn: Any) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        record = _by_thread.get(id(eventlet.getcurrent()))
        if record is not None:
            record["domain_start"] = now_us()
        try:
            return fn(*args, **kwargs)
        finally:
            if record is not None:
                record["domain_end"] = now_us()

    return timed


def _timed_dispatch(dispatch: Any) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        record = _by_thread.get(id(eventlet.getcurrent()))
        started = now_us()
        try:
            return dispatch(*args, **kwargs)
        finally:
            if record is not None:
                record["event_us"] = record.get("event_us", 0) + now_us() - started

    return timed


def _patch() -> None:
    # The service's own dispatcher class (a subclass overriding get_dependency), not the base.
    dispatcher_cls = type(UsersV1.dispatch)
    assert issubclass(dispatcher_cls, EventDispatcher)
    get_dispatcher = dispatcher_cls.get_dependency
    dispatcher_cls.get_dependency = lambda self, worker_ctx: _timed_dispatch(
        get_dispatcher(self, worker_ctx)
    )
    # Registered before the service's MongoClient exists: pymongo reads listeners then.
    monitoring.register(CommandTimes())
    consumer = resilient_rpc.ResilientRpcConsumer
    handle_message, publish_reply = consumer.handle_message, resilient_rpc.publish_reply

    def timed_handle_message(self: Any, body: Any, message: Any) -> Any:
        request_id = _request_id(message)
        if request_id:
            _pending[request_id] = {"rid": request_id, "worker_in": now_us()}
        return handle_message(self, body, message)

    def timed_publish_reply(message: Any, result: Any, exc_info: Any, exchange: str) -> Any:
        record = _pending.pop(_request_id(message) or "", None)
        started = now_us()
        try:
            return publish_reply(message, result, exc_info, exchange)
        finally:
            if record is not None:
                record.update(reply_start=started, reply_end=now_us())
                write("worker", record)

    consumer.handle_message = timed_handle_message
    resilient_rpc.publish_reply = timed_publish_reply
    for name in ("create_user", "update_contact", "get_user"):
        setattr(users_domain, name, _timed_domain(getattr(users_domain, name)))


_patch()


class BindRecord(DependencyProvider):
    """Runs in the worker's greenthread before the method: ties it to its call's record."""

    def worker_setup(self, worker_ctx: Any) -> None:
        record = _pending.get(worker_ctx.context_data.get("request_id") or "")
        if record is not None:
            record["worker_setup"] = now_us()
            _by_thread[id(eventlet.getcurrent())] = record

    def worker_teardown(self, worker_ctx: Any) -> None:
        _by_thread.pop(id(eventlet.getcurrent()), None)


class ProbedUsersV1(UsersV1):
    budget_probe = BindRecord()
