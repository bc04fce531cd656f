"""User payloads (create v1/v2, contact update) and the stored user document."""

from __future__ import annotations

from marshmallow import Schema, fields

from schemas.fields import (
    PartialUpdateSchema,
    StrictInteger,
    address,
    email_list,
    identifier,
    phone_number,
    text,
    timestamp,
)


class UserContactSchema(Schema):
    """The user fields every generation stores as the client sent them."""

    emails = email_list()
    deliveryAddress = address()
    firstName = text()
    lastName = text()
    phoneNumber = phone_number()


class UserCreateV1Schema(UserContactSchema):
    """v1 stores the client's ISO-8601 timestamps when it sends them."""

    createdAt = timestamp()
    updatedAt = timestamp()


class UserCreateV2Schema(UserContactSchema):
    """v2 accepts but ignores client timestamps: the service sets both."""

    createdAt = fields.Raw(metadata={"description": "Ignored: v2 sets it."})
    updatedAt = fields.Raw(metadata={"description": "Ignored: v2 sets it."})


class UserContactUpdateSchema(PartialUpdateSchema):
    """PUT /users/{id}: emails and/or deliveryAddress, nothing else."""

    emails = email_list(required=False)
    deliveryAddress = address(required=False)


class UserDocumentSchema(UserCreateV1Schema):
    """The stored `users` document; source of the Mongo validator and the OpenAPI response."""

    userId = identifier()
    version = StrictInteger(metadata={"description": "Increases by one on every update."})


class UserEventSchema(Schema):
    """Body of the `user_updated` event."""

    userId = identifier()
    userEmails = email_list()
    deliveryAddress = address()
    version = StrictInteger(required=True)
    updatedAt = fields.String(required=True)
