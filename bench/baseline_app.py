"""The baseline: the architecture users would pick instead, one Flask app writing to Mongo.

POST /users/ runs the very same rules as the users_v1 worker (marshmallow schema from
schemas/, email claims, insert: `workers.users.domain.create_user`) and the edge's JSON body
checks, but in-process with pymongo instead of over RabbitMQ. POST /orders/ likewise runs
the orders worker's `workers.orders.domain.create_order`, its user reads (the worker's two
`users.get` RPCs) done in-process by `workers.users.domain.get_user`. Served by the same gunicorn
config as the edges (`gunicorn -c http_edge/gunicorn_conf.py bench.baseline_app:create_app()`).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from flask import Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider

from http_edge.body import json_object
from http_edge.log import configure_logging
from http_edge.problems import EdgeError
from workers.exceptions import EmailTaken, UnknownUser, UserNotFound, ValidationFailed
from workers.orders import domain as orders_domain
from workers.orders.repository import OrdersRepository
from workers.runtime.mongo import database_name, mongo_client
from workers.users import domain as users_domain
from workers.users.repository import UsersRepository

log = logging.getLogger("http_edge.access")  # same logger and JSON format as the edge


class CompactJSON(DefaultJSONProvider):
    sort_keys = False
    compact = True


def create_app() -> Flask:
    configure_logging()
    app = Flask(__name__)
    app.json = CompactJSON(app)
    app.url_map.strict_slashes = False
    config = {key: os.environ.get(key) for key in ("MONGO_URI", "MONGO_DB", "MONGO_TIMEOUT_MS")}
    # One MongoClient per process (thread-safe, pooled), as a Flask app would hold it.
    client = mongo_client(config)
    database = client[database_name(config)]
    repo = UsersRepository(database)
    orders = OrdersRepository(database)

    def fetch_user(user_id: str) -> dict[str, Any]:
        return users_domain.get_user(repo, user_id)

    @app.before_request
    def _before() -> None:
        g.started = time.perf_counter()
        g.request_id = request.headers.get("X-Request-ID") or str(uuid.uuid4())

    @app.after_request
    def _after(response: Response) -> Response:
        # The edge logs one JSON line per request; so does the baseline, to cost the same.
        response.headers["X-Request-ID"] = g.request_id
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={"duration_ms": round((time.perf_counter() - g.started) * 1000, 2)},
        )
        return response

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok"})

    @app.post("/users")
    @app.post("/users/")
    def create_user() -> tuple[Response, int]:
        user = users_domain.create_user(repo, json_object(), users_domain.V1)
        return jsonify(user), 201

    @app.post("/orders")
    @app.post("/orders/")
    def create_order() -> tuple[Response, int]:
        return jsonify(orders_domain.create_order(orders, json_object(), fetch_user)), 201

    @app.get("/users/<user_id>")
    def get_user(user_id: str) -> Response:
        return jsonify(users_domain.get_user(repo, user_id))

    @app.errorhandler(ValidationFailed)
    def _invalid(error: ValidationFailed) -> tuple[Response, int]:
        return _problem(400, "Validation failed", {"errors": error.errors})

    @app.errorhandler(EdgeError)
    def _bad_body(error: EdgeError) -> tuple[Response, int]:
        return _problem(400, str(error), {})

    @app.errorhandler(EmailTaken)
    def _taken(error: EmailTaken) -> tuple[Response, int]:
        return _problem(409, "Email already used", {})

    @app.errorhandler(UnknownUser)
    def _unknown_user(error: UnknownUser) -> tuple[Response, int]:
        return _problem(422, "Order names an unknown user", {})

    @app.errorhandler(UserNotFound)
    def _missing(error: UserNotFound) -> tuple[Response, int]:
        return _problem(404, "User not found", {})

    return app


def _problem(status: int, title: str, extra: dict[str, Any]) -> tuple[Response, int]:
    body = {"type": "about:blank", "title": title, "status": status, **extra}
    response = jsonify(body)
    response.mimetype = "application/problem+json"
    return response, status
