"""Client load for the cluster scenarios: user updates from several clients that retry on
503 (as Retry-After asks, sped up), every attempt recorded with its time and request id."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.support.auth import auth_headers
from tests.support.data import ADDRESS
from tests.support.reliability import RPC_TIMEOUT

# A client that waited longer than this for one answer saw a hang.
HANG_LIMIT = RPC_TIMEOUT + 2.0


@dataclass
class Attempt:
    at: float  # monotonic time the answer (or the failure) came
    status: int  # -1: no HTTP answer (connection dropped or hung past HANG_LIMIT)
    seconds: float
    request_id: str


@dataclass
class UpdateLoad:
    """`updates` PUTs of `users` spread over `bases` (edges or the gateway) by `clients`."""

    bases: list[str]
    users: list[str]
    updates: int
    clients: int = 8
    attempts: list[Attempt] = field(default_factory=list)
    done: int = 0

    def __post_init__(self) -> None:
        self._work: queue.Queue[int] = queue.Queue()
        for index in range(self.updates):
            self._work.put(index)
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)
        ]

    def _client(self) -> None:
        with requests.Session() as session:
            session.headers.update(auth_headers())
            while True:
                try:
                    index = self._work.get_nowait()
                except queue.Empty:
                    return
                change = {
                    "emails": [f"c{index}-{uuid.uuid4().hex[:6]}@example.com"],
                    "deliveryAddress": {**ADDRESS, "street": f"{index} Cluster St"},
                }
                base, user = (
                    self.bases[index % len(self.bases)],
                    self.users[index % len(self.users)],
                )
                url = f"{base}/users/{user}"
                for _ in range(300):
                    request_id = uuid.uuid4().hex
                    started = time.monotonic()
                    try:
                        status = session.put(
                            url, json=change, timeout=HANG_LIMIT,
                            headers={"X-Request-ID": request_id},
                        ).status_code  # fmt: skip
                    except requests.RequestException:
                        status = -1
                    now = time.monotonic()
                    with self._lock:
                        self.attempts.append(Attempt(now, status, now - started, request_id))
                    if status == 200:
                        break
                    time.sleep(0.2)
                with self._lock:
                    self.done += 1

    def start(self) -> UpdateLoad:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float = 180.0) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)
        assert not any(thread.is_alive() for thread in self._threads), "clients still running"

    # -- what happened ----------------------------------------------------------------
    def statuses(self) -> Counter[int]:
        return Counter(attempt.status for attempt in self.attempts)

    def slowest(self) -> float:
        return max(attempt.seconds for attempt in self.attempts)

    def failing_window(self, since: float) -> tuple[float, float]:
        """(first, last) seconds after `since` at which an answer was not 200 (0, 0: none)."""
        late = sorted(a.at - since for a in self.attempts if a.status != 200 and a.at >= since)
        return (late[0], late[-1]) if late else (0.0, 0.0)


def worker_calls(log_text: str, entrypoint: str, outcome: str = "ok") -> Counter[str | None]:
    """request id → how many times a worker's call of `entrypoint` (a method name, or a
    prefix ending in "*") ended with `outcome` ("ok", or the exception's name)."""
    counts: Counter[str | None] = Counter()
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        name = str(entry.get("entrypoint", ""))
        matches = (
            name.startswith(entrypoint[:-1]) if entrypoint.endswith("*") else name == entrypoint
        )
        if entry.get("event") == "call" and matches and entry.get("outcome") == outcome:
            counts[entry.get("request_id")] += 1
    return counts
