"""Operational endpoints: /health (process alive) and /ready (broker, workers and database)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from http_edge import lifecycle
from http_edge.context import rpc_client, settings
from http_edge.problems import describe_check, problem_response
from http_edge.rpc import BrokerUnavailable
from workers.exceptions import StorageUnavailable

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> Response:
    config = settings()
    if lifecycle.draining():  # SIGTERM received: still serving, but send nothing new here
        return problem_response(
            503, "Not ready", "Not ready: draining for shutdown", slug="not-ready",
            headers={"Retry-After": str(config.retry_after)},
            extra={"checks": {"edge": "draining"}},
        )  # fmt: skip
    services = [config.users_service, "orders"]
    checks: dict[str, str] = {}
    try:
        results = rpc_client().ping(
            services, config.ready_timeout, context={"request_id": g.request_id}
        )
    except BrokerUnavailable:
        checks["broker"] = "unreachable"
        checks.update({service: "unknown" for service in services})
        checks["database"] = "unknown"
    else:
        checks["broker"] = "ok"
        for service in services:
            checks[service] = describe_check(results.get(service), config.ready_timeout)
        errors = list(results.values())
        if any(isinstance(error, StorageUnavailable) for error in errors):
            checks["database"] = "unreachable"
        elif all(error is None for error in errors):
            checks["database"] = "ok"  # every worker's ping touches MongoDB
        else:
            checks["database"] = "unknown"
    failed = {part: state for part, state in checks.items() if state != "ok"}
    if not failed:
        return jsonify({"status": "ready", "checks": checks})
    detail = "Not ready: " + ", ".join(f"{part} {state}" for part, state in failed.items())
    return problem_response(
        503,
        "Not ready",
        detail,
        slug="not-ready",
        headers={"Retry-After": str(config.retry_after)},
        extra={"checks": checks},
    )
