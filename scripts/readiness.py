"""Waiting for local processes to answer: shared by the stack manager and the bench stack."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path


class NotReady(RuntimeError):
    """A started component did not answer in time."""


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], what: str, logs: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise NotReady(f"{what} did not become ready within {timeout:.0f}s (see {logs})")
