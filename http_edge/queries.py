"""Query-string schemas the edge parses itself (GET /orders/), built on schemas/."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.orders import OrderListQuerySchema

# I-JSON safe integer: anything larger overflows MongoDB's int64 skip inside the worker.
MAX_OFFSET = 2**53 - 1


class EdgeOrderListQuerySchema(OrderListQuerySchema):
    """OrderListQuerySchema with an upper bound on `offset` (the shared one has none)."""

    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))
