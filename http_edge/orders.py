"""/orders blueprint: REST to the `orders` service; list query parsing is the edge's job."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from marshmallow import ValidationError

from http_edge.auth import check_order_owner, claim_new_order, end_user, restrict_listing
from http_edge.body import json_object
from http_edge.context import call
from schemas.orders import OrderListQuerySchema, OrderStatusUpdateSchema
from workers.exceptions import ValidationFailed

bp = Blueprint("orders", __name__, url_prefix="/orders")
ORDERS = "orders"
_list_query = OrderListQuerySchema()
_status_body = OrderStatusUpdateSchema()


@bp.post("")
@bp.post("/")
def create_order() -> tuple[Response, int]:
    return jsonify(call(ORDERS, "create", claim_new_order(json_object()))), 201


@bp.get("")
@bp.get("/")
def list_orders() -> Response:
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise ValidationFailed(
            {name: ["Give this parameter once."] for name in repeated},
            "Query parameters must not repeat.",
        )
    try:
        query = _list_query.load(request.args.to_dict())
    except ValidationError as exc:
        raise ValidationFailed(exc.messages, "Invalid query parameters.") from exc
    orders = call(
        ORDERS,
        "list",
        query["status"],
        limit=query["limit"],
        offset=query["offset"],
        user_id=restrict_listing(query.get("userId")),
    )
    return jsonify(orders)


@bp.get("/<order_id>")
def get_order(order_id: str) -> Response:
    order = call(ORDERS, "get", order_id)
    check_order_owner(order, order_id)
    return jsonify(order)


@bp.put("/<order_id>/status")
def update_order_status(order_id: str) -> Response:
    # The RPC takes the bare status, so the edge unwraps {"orderStatus": S}; the same schema
    # the worker uses decides what a well-formed body is.
    try:
        body = _status_body.load(json_object())
    except ValidationError as exc:
        raise ValidationFailed(exc.messages) from exc
    before, after = call(ORDERS, "update_status", order_id, body["orderStatus"])
    return jsonify([before, after])


@bp.put("/<order_id>/details")
def update_order_details(order_id: str) -> Response:
    changes = json_object()
    if end_user() is not None:
        # Details never change an order's owner, so checking first cannot race the update.
        check_order_owner(call(ORDERS, "get", order_id), order_id)
    before, after = call(ORDERS, "update_details", order_id, changes)
    return jsonify([before, after])
