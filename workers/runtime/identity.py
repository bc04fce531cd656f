"""Who a call is for: the caller the edge authenticated, carried in nameko's context data."""

from __future__ import annotations

from typing import Any

from nameko.contextdata import ContextDataProvider

CALLER_KEY = "caller"
# Recorded when a call carries no caller: it came from inside the trust boundary (nameko
# shell, an operator's script), not through an edge.
UNIDENTIFIED = "unidentified"


class Caller(ContextDataProvider):
    """`self.caller` in an entrypoint: the consumer name or `user:<userId>` (SPEC §7)."""

    context_key = CALLER_KEY

    def get_dependency(self, worker_ctx: Any) -> str:
        return _name(worker_ctx.data.get(self.context_key))


def _name(caller: Any) -> str:
    return caller if isinstance(caller, str) and caller else UNIDENTIFIED


def created_by(caller: str | None) -> dict[str, str]:
    """The bookkeeping fields of a new document (never in a response: SPEC §1)."""
    return {"createdBy": _name(caller), "updatedBy": _name(caller)}


def updated_by(caller: str | None) -> dict[str, str]:
    return {"updatedBy": _name(caller)}
