"""Draining: a flag the gunicorn master sets on SIGTERM and its forked workers read, so
/ready answers 503 while the edge still serves, before it stops accepting."""

from __future__ import annotations

import multiprocessing
import multiprocessing.sharedctypes

_flag: multiprocessing.sharedctypes.Synchronized | None = None


def share_flag() -> None:
    """Create the shared flag; the master calls this before it forks any worker."""
    global _flag
    _flag = multiprocessing.Value("b", 0)


def start_draining() -> None:
    if _flag is not None:
        _flag.value = 1


def draining() -> bool:
    return _flag is not None and bool(_flag.value)
