"""The edge's RPC client: nameko's wire protocol over one lean py-amqp channel per thread.

Why not `ClusterRpcProxy`, and what each choice costs: docs/api.md, docs/performance.md.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

import amqp
import amqp.exceptions
from kombu.utils.url import parse_url
from nameko.constants import NON_PERSISTENT
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.rpc import RPC_QUEUE_TEMPLATE

from common.wire import (
    CONNECTION_ERRORS,
    CONTENT_TYPE,
    DIRECT_REPLY_TO,
    RPC_EXCHANGE,
    decode_reply,
    publish,
    request_body,
    request_headers,
)

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached or dropped the connection during a call."""


class RpcClient(Protocol):
    """What the blueprints need; tests substitute a fake."""

    def call(
        self, service: str, method: str, *args: Any, context: dict[str, str], **kwargs: Any
    ) -> Any: ...

    def ping(
        self, services: Iterable[str], timeout: float, context: dict[str, str]
    ) -> dict[str, BaseException | None]: ...


def _readable(sock: Any) -> bool:
    """Anything to read (or EOF, or an error) on `sock`, without waiting."""
    if hasattr(select, "poll"):  # no limit on fd numbers; eventlet's green select lacks it
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def failover_uris(amqp_uri: str) -> list[str]:
    """The node URIs of kombu's failover form `amqp://u:p@a/v;amqp://u:p@b/v`, in order."""
    uris = [uri.strip() for uri in amqp_uri.split(";") if uri.strip()]
    if not uris:
        raise ValueError("AMQP_URI names no broker")
    return uris


class ReplyChannel:
    """One AMQP connection and channel that consumes its replies by direct reply-to.

    Not thread-safe: each thread of the edge keeps its own (NamekoRpcClient).
    """

    def __init__(self, amqp_uri: str, timeout: float) -> None:
        url = parse_url(amqp_uri)
        self.connection = amqp.Connection(
            host=f"{url.get('hostname') or 'localhost'}:{url.get('port') or 5672}",
            userid=url.get("userid") or "guest",
            password=url.get("password") or "guest",
            virtual_host=url.get("virtual_host") or "/",
            connect_timeout=min(timeout, 5.0),
            # A broker that stops reading must not hang a request thread past its timeout.
            write_timeout=timeout,
            # Shown in RabbitMQ's management UI: which process holds this connection.
            client_properties={"connection_name": f"http_edge pid {os.getpid()}"},
        )
        self.connection.connect()
        # A request expires after the RPC timeout: one whose caller gave up (504) never runs late.
        self.expiration = str(max(1, int(timeout * 1000)))  # ms, as AMQP wants it
        channel = self.connection.channel()
        try:
            # Checked only: the edge's broker account may not declare (launch/broker_accounts).
            channel.exchange_declare(RPC_EXCHANGE, "topic", passive=True)
        except amqp.exceptions.NotFound:
            # Unprovisioned vhost: declared like nameko does, so the first call works before
            # any worker started (the failed check closed the first channel).
            channel = self.connection.channel()
            channel.exchange_declare(RPC_EXCHANGE, "topic", durable=True, auto_delete=False)
        # Direct reply-to: the broker hands replies to this channel, no reply queue is declared.
        channel.basic_consume(DIRECT_REPLY_TO, no_ack=True, callback=self._on_reply)
        channel.events["basic_return"].add(self._on_return)
        self.channel = channel
        self._served: set[str] = set()  # services seen with a consumer on this connection
        self._waiting: set[str] = set()
        self._outcomes: dict[str, bytes | BaseException] = {}

    def looks_dead(self) -> bool:
        """True if the broker closed this connection between calls (or left anything on it).

        A connection the broker (or a proxy) closed between calls still accepts a write;
        only the read after it fails, when the request may or may not have been taken.
        Checked before publishing (one `poll`, no round trip), the request goes out on a
        fresh connection instead of costing the caller a 503. Between calls nothing is
        expected on it, so anything readable — a close, an EOF, a late reply — means
        "start afresh".
        """
        try:
            return _readable(self.connection.sock)
        except (OSError, ValueError):  # closed or invalid socket
            return True

    # -- broker callbacks (run inside drain_events, on this thread) --------------------
    def _on_reply(self, message: amqp.Message) -> None:
        correlation_id = message.properties.get("correlation_id")
        if correlation_id in self._waiting:
            self._outcomes[correlation_id] = message.body
        else:  # the answer to a call that already timed out
            log.debug("reply for an unknown correlation id %s dropped", correlation_id)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        correlation_id = message.properties.get("correlation_id")
        if correlation_id in self._waiting:
            self._outcomes[correlation_id] = UnknownService(routing_key.split(".", 1)[0])

    # -- calls ------------------------------------------------------------------------
    def _check_served(self, service: str) -> None:
        """UnknownService unless `service`'s queue has a consumer (once per connection)."""
        # On a channel of its own: a passive declare of a missing queue closes its channel.
        probe = self.connection.channel()
        try:
            _, _, consumers = probe.queue_declare(RPC_QUEUE_TEMPLATE.format(service), passive=True)
        except amqp.exceptions.NotFound:
            raise UnknownService(service) from None
        probe.close()
        if not consumers:
            raise UnknownService(service)
        self._served.add(service)

    def publish(
        self,
        service: str,
        method: str,
        args: tuple,
        kwargs: dict,
        context: dict[str, str],
        verify_consumers: bool = False,
    ) -> str:
        """Send one request; returns its correlation id for `wait`."""
        if verify_consumers or service not in self._served:
            self._check_served(service)
        correlation_id = uuid.uuid4().hex
        message = amqp.Message(
            request_body(args, kwargs),
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            # Replies can only reach this connection: a request that outlived a broker
            # restart could be answered to nobody, so it is not written to disk.
            delivery_mode=NON_PERSISTENT,
            expiration=self.expiration,
            reply_to=DIRECT_REPLY_TO,
            correlation_id=correlation_id,
            application_headers=request_headers(context, f"http_edge.{method}.{correlation_id}"),
        )
        self._waiting.add(correlation_id)
        # `mandatory`: a request no queue is bound for comes back before any reply could, as
        # UnknownService. No publisher confirm: for a non-persistent message to a queue without
        # an overflow policy it could only say "taken" (docs/performance.md).
        publish(self.channel, message, RPC_EXCHANGE, f"{service}.{method}", mandatory=True)
        return correlation_id

    def wait(self, correlation_id: str, deadline: float) -> Any:
        """The result of one call, or its error raised; RpcTimeout after `deadline`."""
        try:
            while correlation_id not in self._outcomes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RpcTimeout()
                try:
                    self.connection.drain_events(timeout=remaining)
                except TimeoutError:
                    continue
            outcome = self._outcomes.pop(correlation_id)
        finally:
            self._waiting.discard(correlation_id)
        if isinstance(outcome, BaseException):
            raise outcome
        return decode_reply(outcome)

    def close(self) -> None:
        try:
            self.connection.collect()  # drop the socket without a closing handshake
        except Exception:  # noqa: BLE001 - the connection is already broken; just let go
            log.debug("error while dropping a broken RPC connection", exc_info=True)


class NamekoRpcClient:
    """Calls nameko services; request context (request_id) travels as `nameko.*` headers.

    py-amqp is not thread-safe and a connection costs several round trips to open, so each
    thread keeps its own, rebuilt after any failure.
    """

    def __init__(self, amqp_uri: str, timeout: float) -> None:
        self.amqp_uri = amqp_uri
        # kombu's failover form, as nameko reads it: `amqp://a;amqp://b` (a cluster's nodes).
        self.node_uris = failover_uris(amqp_uri)
        self.timeout = timeout
        self._local = threading.local()

    def _channel(self) -> ReplyChannel:
        channel = getattr(self._local, "channel", None)
        if channel is not None and channel.looks_dead():
            log.info("RPC connection closed between calls; reconnecting")
            self.discard()
            channel = None
        if channel is None:
            channel = self._connect()
            self._local.channel = channel
        return channel

    def _connect(self) -> ReplyChannel:
        """A channel on the first node that answers, starting with this thread's current one."""
        first = getattr(self._local, "node", 0)
        errors = []
        for step in range(len(self.node_uris)):
            node = (first + step) % len(self.node_uris)
            try:
                channel = ReplyChannel(self.node_uris[node], self.timeout)
            except CONNECTION_ERRORS as exc:
                errors.append(f"node {node + 1}: {exc}")
                continue
            if node != first:
                log.info("RPC connection failed over to broker node %d", node + 1)
            self._local.node = node
            return channel
        raise BrokerUnavailable(f"cannot connect to the broker: {'; '.join(errors)}")

    def discard(self) -> None:
        """Drop this thread's connection so the next call reconnects (after any failure):
        to the next listed node first, since the one that failed may be gone."""
        channel = getattr(self._local, "channel", None)
        self._local.channel = None
        if channel is not None:
            channel.close()
            self._local.node = (getattr(self._local, "node", 0) + 1) % len(self.node_uris)

    def _guarded(self, fn: Any) -> Any:
        try:
            return fn()
        except RpcTimeout:
            # The connection may be silently dead (it sends no heartbeats): start afresh.
            self.discard()
            raise
        except CONNECTION_ERRORS as exc:
            self.discard()
            raise BrokerUnavailable(f"broker connection failed: {exc}") from exc

    def call(
        self, service: str, method: str, *args: Any, context: dict[str, str], **kwargs: Any
    ) -> Any:
        def run() -> Any:
            channel = self._channel()
            correlation_id = channel.publish(service, method, args, kwargs, context)
            return channel.wait(correlation_id, time.monotonic() + self.timeout)

        return self._guarded(run)

    def ping(
        self, services: Iterable[str], timeout: float, context: dict[str, str]
    ) -> dict[str, BaseException | None]:
        """Ping every service concurrently within `timeout` seconds in total.

        Maps each service to None (answered) or the error it gave; raises BrokerUnavailable.
        """
        deadline = time.monotonic() + timeout
        results: dict[str, BaseException | None] = {}

        def run() -> None:
            channel = self._channel()
            pending = {}
            for service in services:
                try:
                    # Readiness asks afresh each time whether anyone consumes the queue.
                    pending[service] = channel.publish(
                        service, "ping", (), {}, context, verify_consumers=True
                    )
                except UnknownService as exc:
                    results[service] = exc
            for service, correlation_id in pending.items():
                try:
                    channel.wait(correlation_id, deadline)
                    results[service] = None
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported per service (incl. timeout)
                    results[service] = exc
            if any(isinstance(error, RpcTimeout) for error in results.values()):
                self.discard()  # the connection may be silently dead (no heartbeats)

        self._guarded(run)
        return results
