"""`micro-db check`'s audit as a test assertion, scoped to the users a test made."""

from __future__ import annotations

import time
from typing import Any

from tests.support.polling import wait_until
from workers.db import invariants


def assert_invariants(
    database: Any, user_ids: list[str], settle: float = 10.0
) -> invariants.Audit:
    """The audit of this test's users (the tier's database also holds the deliberately
    forged events of test_event_guarantees). Events still in flight are not violations:
    let the outbox drain, then give the handler a moment to apply what was published."""
    pending = {"userId": {"$in": user_ids}, "eventPendingSince": {"$exists": True}}
    wait_until(lambda: database.users.count_documents(pending) == 0, timeout=30)
    deadline = time.monotonic() + settle
    result = invariants.audit(database, user_ids=user_ids)
    while result.open and time.monotonic() < deadline:
        time.sleep(0.5)
        result = invariants.audit(database, user_ids=user_ids)
    assert not result.open, "\n".join(invariants.report_lines(result))
    return result
