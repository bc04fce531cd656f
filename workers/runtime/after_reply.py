"""Work an entrypoint leaves for after its reply: a PUT's event publish and outbox flag clear.

`AfterReply` injects `after_reply(fn, *args)`. The queued calls run in the worker's own
greenthread at teardown: nameko has then sent the RPC reply and acked the request
(`handle_result`), and every provider's `worker_result` (call log line, metrics, server
span) has seen the call end, so none of them counts the deferred work. Each call runs in a
copy of the context it was queued in (`contextvars`), so its spans stay in the call's trace
and its log lines keep the request id.

Why the worker's greenthread and not `container.spawn_managed_thread`: on stop (SIGTERM),
nameko waits for running workers *before* it stops the dependency providers, and stops
those all at once (MongoStore closes its client while another provider may still wait);
managed threads are killed at the very end. Work held by the worker is finished before
the database client closes, with no ordering of providers to get right; a kill (or a
crash) loses it, and the outbox relay covers that (docs/reliability.md).
"""

from __future__ import annotations

import contextvars
import logging
import weakref
from collections.abc import Callable
from typing import Any

from nameko.extensions import DependencyProvider

log = logging.getLogger(__name__)

Deferred = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...]]
AfterReplyFn = Callable[..., None]


def run_now(fn: Callable[..., Any], *args: Any) -> None:
    """An `after_reply` that does not defer (callers outside a nameko worker)."""
    fn(*args)


class AfterReply(DependencyProvider):
    def __init__(self) -> None:
        self._queued: weakref.WeakKeyDictionary[Any, list[Deferred]] = weakref.WeakKeyDictionary()

    def get_dependency(self, worker_ctx: Any) -> AfterReplyFn:
        def after_reply(fn: Callable[..., Any], *args: Any) -> None:
            entry = (contextvars.copy_context(), fn, args)
            self._queued.setdefault(worker_ctx, []).append(entry)

        return after_reply

    def worker_teardown(self, worker_ctx: Any) -> None:
        for context, fn, args in self._queued.pop(worker_ctx, ()):
            try:
                context.run(fn, *args)
            except Exception:
                # An exception escaping a worker kills the container: log it, the work is
                # best-effort by contract (the outbox relay re-sends what it failed to do).
                log.exception("after-reply work %s failed", getattr(fn, "__name__", fn))
