"""User payloads (create v1/v2, contact update) and the stored user document."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates_schema

from schemas.fields import (
    StrictInteger,
    address,
    email_list,
    identifier,
    phone_number,
    text,
    timestamp,
)


class UserCreateV2Schema(Schema):
    """What a client may send to create a user on v2 (timestamps are the service's)."""

    emails = email_list()
    deliveryAddress = address()
    firstName = text()
    lastName = text()
    phoneNumber = phone_number()


class UserCreateV1Schema(UserCreateV2Schema):
    """v1 lets the client supply its own ISO-8601 timestamps."""

    createdAt = timestamp()
    updatedAt = timestamp()


class UserContactUpdateSchema(Schema):
    """PUT /users/{id}: emails and/or deliveryAddress, nothing else."""

    emails = email_list(required=False)
    deliveryAddress = address(required=False)

    @validates_schema
    def _at_least_one(self, data: dict, **_: object) -> None:
        if not data:
            raise ValidationError("Send emails and/or deliveryAddress.", field_name="_schema")


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
