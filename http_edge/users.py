"""/users blueprint: this edge process serves exactly one users generation (USERS_SERVICE)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from http_edge.body import json_object
from http_edge.context import call, users_service

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.post("")
@bp.post("/")
def create_user() -> tuple[Response, int]:
    user = call(users_service(), "create", json_object())
    return jsonify(user), 201


@bp.get("/<user_id>")
def get_user(user_id: str) -> Response:
    return jsonify(call(users_service(), "get", user_id))


@bp.put("/<user_id>")
def update_user(user_id: str) -> Response:
    changes = json_object()
    before, after = call(users_service(), "update", user_id, changes)
    return jsonify([before, after])
