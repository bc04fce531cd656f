"""The service `python -m bench.relay` calls: the workers' RPC plumbing around no work at all.

Same entrypoint (`workers.runtime.resilient_rpc.rpc`: signature check, reply on the request's
channel), the same per-call JSON log line (`RequestLogging`), metrics (`WorkerMetrics`) and
server span (`Tracing`, exported as the stack's are) as users_v1 and users_v2, so what a
call costs this worker is what the relay costs theirs.
"""

from __future__ import annotations

from typing import Any

from workers.runtime.logs import RequestLogging
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.resilient_rpc import rpc
from workers.runtime.tracing import Tracing


class RelayEcho:
    name = "relay_echo"
    request_logging = RequestLogging()
    metrics = WorkerMetrics()
    traces = Tracing()

    @rpc
    def echo(self, payload: Any) -> Any:
        return payload
