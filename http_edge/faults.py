"""Fault injection for rollout tests and drills (docs/strangler-runbook.md): this edge fails a
share of its /users requests with a 503 problem or delays them. Off unless its variables are
set; read once at start, so a running edge never changes behaviour."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request

from http_edge.config import ConfigError
from http_edge.problems import problem_response

ERROR_RATIO = "EDGE_FAULT_ERROR_RATIO"  # 0..1: the share of /users requests answered 503
DELAY_MS = "EDGE_FAULT_DELAY_MS"  # added to every /users request


@dataclass(frozen=True)
class Faults:
    error_ratio: float = 0.0
    delay_seconds: float = 0.0

    @property
    def active(self) -> bool:
        return self.error_ratio > 0 or self.delay_seconds > 0

    @classmethod
    def from_env(cls, overrides: dict[str, Any]) -> Faults:
        env = os.environ
        ratio = overrides.get(ERROR_RATIO, env.get("EDGE_FAULT_ERROR_RATIO", ""))
        delay = overrides.get(DELAY_MS, env.get("EDGE_FAULT_DELAY_MS", ""))
        ratio, delay = _number(ERROR_RATIO, ratio, 1.0), _number(DELAY_MS, delay, 60_000.0)
        return cls(error_ratio=ratio, delay_seconds=delay / 1000)


def _number(name: str, value: object, most: float) -> float:
    raw = str(value).strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}.") from exc
    if not 0 <= value <= most:
        raise ConfigError(f"{name} must be from 0 to {most:g}, got {raw!r}.")
    return value


def register_faults(app: Flask, faults: Faults) -> None:
    """Delay, then fail the configured share of /users requests (a no-op when inactive)."""
    if not faults.active:
        return
    app.logger.warning(
        "fault injection on: %s of /users requests fail, +%s s each",
        faults.error_ratio,
        faults.delay_seconds,
    )
    draw = random.Random().random  # noqa: S311 - a drill's coin, not a secret

    def inject() -> Response | None:
        if not request.path.startswith("/users"):
            return None
        if faults.delay_seconds:
            time.sleep(faults.delay_seconds)
        if draw() < faults.error_ratio:
            detail = f"{ERROR_RATIO}={faults.error_ratio}: this edge fails requests on purpose."
            return problem_response(503, "Fault injected", detail, slug="fault-injected")
        return None

    app.before_request(inject)
