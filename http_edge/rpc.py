"""RPC client: one long-lived nameko reply connection per thread, rebuilt after failures.

A `ClusterRpcProxy` is single-threaded (sharing one across threads corrupts its AMQP
connection) and opening one per request is ~8x slower, so each thread keeps its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

import amqp.exceptions
import kombu.exceptions
import kombu.pools
from nameko.constants import NON_PERSISTENT
from nameko.containers import WorkerContext
from nameko.exceptions import RpcTimeout
from nameko.rpc import ServiceProxy
from nameko.standalone.rpc import ClusterRpcProxy

log = logging.getLogger(__name__)

# Fail fast when the broker is gone: nameko's default publish retry waits ~12 s.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

# Everything that means "the broker connection is unusable" rather than "a worker said no".
# RuntimeError is what nameko's polling consumer raises once its connection is dead.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    kombu.exceptions.KombuError,
    amqp.exceptions.AMQPError,
    RuntimeError,
)


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached (or dropped the connection) during a call."""


class RpcClient(Protocol):
    """What the blueprints need; tests substitute a fake."""

    def call(
        self, service: str, method: str, *args: Any, context: dict[str, str], **kwargs: Any
    ) -> Any: ...

    def ping(
        self, services: Iterable[str], timeout: float, context: dict[str, str]
    ) -> dict[str, BaseException | None]: ...


class NamekoRpcClient:
    """Calls nameko services; request context (request_id) travels as `nameko.*` headers."""

    def __init__(self, amqp_uri: str, timeout: float, pool_limit: int = 16) -> None:
        self.config = {"AMQP_URI": amqp_uri}
        self.timeout = timeout
        self._local = threading.local()
        # Publishing borrows producers from kombu's process-wide pool (default 10).
        if kombu.pools.get_limit() < pool_limit:
            kombu.pools.set_limit(pool_limit)

    def _standalone(self) -> ClusterRpcProxy:
        standalone = getattr(self._local, "standalone", None)
        if standalone is None:
            standalone = ClusterRpcProxy(self.config, timeout=self.timeout)
            try:
                standalone.start()
            except CONNECTION_ERRORS as exc:
                raise BrokerUnavailable(f"cannot connect to the broker: {exc}") from exc
            self._local.standalone = standalone
        return standalone

    def discard(self) -> None:
        """Drop this thread's connection so the next call reconnects (after any failure)."""
        standalone = getattr(self._local, "standalone", None)
        self._local.standalone = None
        if standalone is not None:
            try:
                standalone.stop()
            except Exception:  # noqa: BLE001 - the connection is already broken; just let go
                log.debug("error while closing a broken RPC connection", exc_info=True)

    def _service(self, standalone: ClusterRpcProxy, service: str, context: dict) -> ServiceProxy:
        # A fresh worker context per call gives each request its own call id and request_id.
        worker_ctx = WorkerContext(
            standalone._worker_ctx.container,
            service=None,
            entrypoint=ClusterRpcProxy.Dummy,
            data=dict(context),
        )
        # Requests go non-persistent: the caller's reply queue dies with the broker, so a
        # request that outlived a broker restart could never be answered anyway. Confirms
        # and `mandatory` stay (nameko's UnknownService needs both: a stopped service is
        # still a fast 503).
        return ServiceProxy(
            worker_ctx,
            service,
            standalone._reply_listener,
            retry_policy=PUBLISH_RETRY_POLICY,
            delivery_mode=NON_PERSISTENT,
        )

    def _guarded(self, fn: Any) -> Any:
        try:
            return fn()
        except RpcTimeout:
            # A late reply would otherwise sit in this connection's buffer forever.
            self.discard()
            raise
        except CONNECTION_ERRORS as exc:
            self.discard()
            raise BrokerUnavailable(f"broker connection failed: {exc}") from exc

    def call(
        self, service: str, method: str, *args: Any, context: dict[str, str], **kwargs: Any
    ) -> Any:
        def run() -> Any:
            proxy = self._service(self._standalone(), service, context)
            return getattr(proxy, method)(*args, **kwargs)

        return self._guarded(run)

    def ping(
        self, services: Iterable[str], timeout: float, context: dict[str, str]
    ) -> dict[str, BaseException | None]:
        """Ping every service concurrently within `timeout` seconds in total.

        Maps each service to None (answered) or the error it gave; raises BrokerUnavailable.
        """
        standalone = self._guarded(self._standalone)
        consumer = standalone._reply_listener.queue_consumer
        deadline = time.monotonic() + timeout
        results: dict[str, BaseException | None] = {}
        timed_out = False
        try:
            replies = {}
            for service in services:
                proxy = self._service(standalone, service, context)
                try:
                    replies[service] = proxy.ping.call_async()
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported per service
                    results[service] = exc
            for service, reply in replies.items():
                consumer.timeout = max(0.05, deadline - time.monotonic())
                try:
                    reply.result()
                    results[service] = None
                except RpcTimeout as exc:
                    timed_out = True
                    results[service] = exc
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported per service
                    results[service] = exc
        except CONNECTION_ERRORS as exc:
            self.discard()
            raise BrokerUnavailable(f"broker connection failed: {exc}") from exc
        finally:
            consumer.timeout = self.timeout
        if timed_out:
            self.discard()
        return results
