"""`create_app(config=None)`: the Flask app factory (settings from env, overridable by tests)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from prometheus_client import CollectorRegistry

from http_edge import docs, ops, orders, users
from http_edge.auth import register_auth
from http_edge.config import MAX_BODY_BYTES, EdgeSettings
from http_edge.context import register_request_hooks
from http_edge.faults import Faults, register_faults
from http_edge.log import configure_logging
from http_edge.metrics import EdgeMetrics, register_metrics
from http_edge.openapi import build_openapi
from http_edge.problems import register_error_handlers
from http_edge.rpc import NamekoRpcClient
from http_edge.tracing import register_tracing


class CompactJSON(DefaultJSONProvider):
    # Services already send ordered documents; sorting and pretty-printing only cost time.
    sort_keys = False
    compact = True


_OBJECTS = ("RPC_CLIENT", "METRICS_REGISTRY")  # injected objects, not settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the edge. `config` may override env settings and inject `RPC_CLIENT` (a fake);
    metrics go to `METRICS_REGISTRY` if given, else to a registry of this app's own."""
    config = dict(config or {})
    configure_logging(config.get("LOG_LEVEL"))
    app = Flask(__name__)
    app.json = CompactJSON(app)
    # Werkzeug answers "//" and a missing trailing slash with an HTML redirect; routes here
    # match both slash forms themselves and anything else is a JSON 404.
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    settings = EdgeSettings.from_env(config)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        EDGE_SETTINGS=settings,
    )
    app.config.update({k: v for k, v in config.items() if k.isupper() and k not in _OBJECTS})
    app.extensions["rpc"] = config.get("RPC_CLIENT") or NamekoRpcClient(
        settings.amqp_uri, settings.rpc_timeout
    )
    app.extensions["openapi"] = build_openapi(settings)
    metrics = EdgeMetrics(config.get("METRICS_REGISTRY") or CollectorRegistry())
    app.extensions["metrics"] = metrics
    register_request_hooks(app)
    register_tracing(app, f"edge-{settings.users_version}")
    register_auth(app, settings.credentials_file)  # after the request id is set
    register_metrics(app, metrics, settings.users_version)
    register_faults(app, Faults.from_env(config))
    register_error_handlers(app)
    for blueprint in (users.bp, orders.bp, ops.bp, docs.bp):
        app.register_blueprint(blueprint)
    return app
