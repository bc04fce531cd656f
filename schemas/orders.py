"""Order payloads (create, status update, details update) and the stored order document."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.fields import (
    MAX_ITEMS,
    ItemSchema,
    PartialUpdateSchema,
    address,
    email_list,
    identifier,
    order_status,
    timestamp,
)

# I-JSON safe integer: anything larger overflows MongoDB's int64 skip inside the worker.
MAX_OFFSET = 2**53 - 1


class OrderCreateSchema(Schema):
    userId = identifier(required=False)
    items = fields.List(
        fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=MAX_ITEMS)
    )
    userEmails = email_list()
    deliveryAddress = address()
    orderStatus = order_status()


class OrderStatusUpdateSchema(Schema):
    orderStatus = order_status()


class OrderDetailsUpdateSchema(PartialUpdateSchema):
    """PUT /orders/{id}/details: userEmails and/or deliveryAddress, nothing else."""

    userEmails = email_list(required=False)
    deliveryAddress = address(required=False)


class OrderDocumentSchema(OrderCreateSchema):
    """The stored `orders` document; source of the Mongo validator and the OpenAPI response."""

    orderId = identifier()
    createdAt = timestamp(required=True)
    updatedAt = timestamp(required=True)


class OrderListQuerySchema(Schema):
    """GET /orders/?status=S&limit=&offset=&userId= (query strings, so ints are parsed)."""

    status = order_status()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))
    userId = identifier(required=False)
