"""Clock, date formatting and the public (response) shape of stored documents."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields

from schemas.fields import UUID4_PATTERN
from schemas.orders import OrderDocumentSchema
from schemas.users import UserDocumentSchema
from workers.exceptions import NotFound, StoredDocumentInvalid, ValidationFailed

log = logging.getLogger(__name__)

USER_PUBLIC_FIELDS = (
    "userId",
    "emails",
    "deliveryAddress",
    "firstName",
    "lastName",
    "phoneNumber",
    "createdAt",
    "updatedAt",
    "version",
)
ORDER_PUBLIC_FIELDS = (
    "orderId",
    "userId",
    "items",
    "userEmails",
    "deliveryAddress",
    "orderStatus",
    "createdAt",
    "updatedAt",
)


DATE_FIELDS = frozenset({"createdAt", "updatedAt"})
_UUID4 = re.compile(UUID4_PATTERN)


def utcnow() -> datetime:
    """Now in UTC, truncated to milliseconds: the precision BSON dates keep."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def to_storage_date(value: datetime) -> datetime:
    """Naive UTC at millisecond precision (what pymongo hands back without tz_aware)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def as_datetime(value: datetime | str) -> datetime:
    # nx-27017 (the local wire server) hands back a `$set` date as its str(); real MongoDB
    # returns a date. Accept both so the output is the same on either.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def to_iso(value: datetime | str) -> str:
    # isoformat pads the year to four digits (strftime("%Y") does not on Linux: year 357).
    return to_storage_date(as_datetime(value)).isoformat(timespec="milliseconds") + "Z"


def _public(doc: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in fields:
        if name in doc:
            value = doc[name]
            out[name] = _iso_or_raw(value) if name in DATE_FIELDS else value
    return out


def _iso_or_raw(value: Any) -> Any:
    # A date another tool stored as something else is left for the schema check to name.
    try:
        return to_iso(value)
    except (TypeError, ValueError, AttributeError):
        return value


Check = Callable[[Any], bool]


def shape_check(schema: Schema) -> Callable[[dict[str, Any]], list[str]]:
    """A function naming the fields of a document missing (when required) or of a JSON type
    `schema` does not declare, compiled once from the schema's fields.

    Types only: the content rules (patterns, lengths, the email key) are the write path's and
    `micro-db check`'s; full marshmallow validation on every read cost 0.25 ms per user and
    0.6 ms per order.
    """
    checks = [
        (field.data_key or name, field.required, _type_check(field))
        for name, field in schema.fields.items()
    ]

    def errors(data: dict[str, Any]) -> list[str]:
        bad = []
        for key, required, fits in checks:
            if key in data:
                if not fits(data[key]):
                    bad.append(key)
            elif required:
                bad.append(key)
        return bad

    return errors


def _type_check(field: fields.Field) -> Check:
    allow_none = field.allow_none
    if isinstance(field, fields.Nested):
        nested = shape_check(field.schema)
        inner: Check = lambda v: isinstance(v, dict) and not nested(v)  # noqa: E731
    elif isinstance(field, fields.List):
        item = _type_check(field.inner)
        inner = lambda v: isinstance(v, list) and all(map(item, v))  # noqa: E731
    elif isinstance(field, fields.DateTime):
        inner = lambda v: isinstance(v, str) and _is_iso(v)  # noqa: E731
    elif isinstance(field, fields.Boolean):
        inner = lambda v: isinstance(v, bool)  # noqa: E731
    elif isinstance(field, fields.Integer):
        inner = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    elif isinstance(field, fields.Number):
        inner = lambda v: (  # noqa: E731
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        )
    elif isinstance(field, fields.String):
        inner = lambda v: isinstance(v, str)  # noqa: E731
    else:
        inner = lambda v: True  # noqa: E731 - Raw: whatever JSON carried was accepted on write
    return lambda v: allow_none if v is None else inner(v)


def _is_iso(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


USER_SHAPE = shape_check(UserDocumentSchema())
ORDER_SHAPE = shape_check(OrderDocumentSchema())


def checked_public(
    doc: dict[str, Any],
    public_fields: tuple[str, ...],
    shape: Callable[[dict[str, Any]], list[str]],
    kind: str,
    id_field: str,
) -> dict[str, Any]:
    """The public shape of a stored document, or StoredDocumentInvalid (logged with the
    document's id and the failing field names, never their values) if it breaks `shape`."""
    public = _public(doc, public_fields)
    names = sorted(shape(public))
    if names:
        identifier = str(doc.get(id_field) or doc.get("_id"))
        log.error(
            "stored %s %s breaks its schema: %s",
            kind.lower(),
            identifier,
            ", ".join(names),
            extra={"event": "stored_document_invalid", "document": identifier, "fields": names},
        )
        raise StoredDocumentInvalid(kind, identifier, names)
    return public


def public_user(doc: dict[str, Any]) -> dict[str, Any]:
    return checked_public(doc, USER_PUBLIC_FIELDS, USER_SHAPE, "User", "userId")


def public_order(doc: dict[str, Any]) -> dict[str, Any]:
    return checked_public(doc, ORDER_PUBLIC_FIELDS, ORDER_SHAPE, "Order", "orderId")


def load_payload(schema: Schema, payload: Any) -> dict[str, Any]:
    """Validate a payload with a marshmallow schema, raising the typed remote error."""
    if not isinstance(payload, dict):
        raise ValidationFailed({"_schema": ["Expected a JSON object."]})
    try:
        return schema.load(payload)
    except ValidationError as error:
        messages = (
            error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        )
        raise ValidationFailed(messages) from None


def checked_id(value: Any, not_found: type[NotFound]) -> str:
    """An id argument of an RPC call: a string or a validation error, so nothing but a
    plain string ever reaches a query; a string no id can have is simply not found."""
    if not isinstance(value, str):
        raise ValidationFailed({"id": ["Must be a string."]})
    if _UUID4.fullmatch(value) is None:
        raise not_found(value[:100])
    return value
