"""Field rules shared by every payload: each rule is written here and nowhere else."""

from __future__ import annotations

import numbers
import unicodedata
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from schemas.emails import email_key

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
PHONE_PATTERN = r"^[0-9]{10,15}$"
UUID4_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
ORDER_STATUSES = ("under process", "shipping", "delivered")

# Generous caps so a hostile body cannot make a worker chew on megabytes of strings.
MAX_TEXT = 200
MAX_EMAIL = 254
MAX_EMAILS = 20
MAX_ITEMS = 100


class StrictInteger(fields.Integer):
    """An integer that refuses strings ("5"), floats (5.0) and booleans."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictNumber(fields.Float):
    """A finite JSON number; strings and booleans are refused, not coerced."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.make_error("invalid")
        return super()._validated(value)


class FullMatch(validate.Regexp):
    """A Regexp that must match the whole string: `$` alone also matches before a final
    newline, so `"1234567890\\n"` passed as a phone number."""

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# Cc: C0/C1 controls and DEL; Cf: format characters (bidi overrides and isolates,
# zero-width space/joiners, BOM, soft hyphen); Zl/Zp: line and paragraph separators;
# Cs: lone surrogates (bson cannot encode them); Co/Cn: private use and unassigned.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
# Unicode's Default_Ignorable_Code_Point characters outside Cf (combining grapheme
# joiner, variation selectors, Hangul fillers): invisible, so two keys would look alike.
INVISIBLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0]
    + list(range(0x180B, 0x1810))
    + list(range(0xFE00, 0xFE10))
    + list(range(0xE0100, 0xE01F0))
)


def printable(value: str) -> None:
    """No control, bidi, zero-width or otherwise invisible characters: they break logs and
    CSV exports, and make two strings that look the same compare different.

    A plain function on purpose: it tightens the API without changing the stored-document
    patterns of SPEC §1 that the Mongo validators are generated from."""
    if any(ord(ch) in INVISIBLE or unicodedata.category(ch) in REFUSED_CATEGORIES for ch in value):
        raise ValidationError(
            "Must not contain control, bidi, zero-width or invisible characters."
        )


def text(*, required: bool = False) -> fields.String:
    return fields.String(
        required=required, validate=[validate.Length(min=1, max=MAX_TEXT), printable]
    )


def email() -> fields.String:
    return fields.String(
        validate=[
            validate.Length(max=MAX_EMAIL),
            FullMatch(EMAIL_PATTERN, error="Not a valid email address."),
            printable,
        ]
    )


def _no_duplicates(values: list[str]) -> None:
    keys = [email_key(value) for value in values]
    if len(set(keys)) != len(keys):
        raise ValidationError("Emails must not repeat (compared case- and form-insensitively).")


def email_list(*, required: bool = True) -> fields.List:
    return fields.List(
        email(),
        required=required,
        validate=[validate.Length(min=1, max=MAX_EMAILS), _no_duplicates],
    )


def phone_number() -> fields.String:
    return fields.String(validate=FullMatch(PHONE_PATTERN, error="Must be 10 to 15 digits."))


def order_status(*, required: bool = True) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.OneOf(ORDER_STATUSES, error="Must be one of: {choices}."),
    )


def identifier(*, required: bool = True) -> fields.String:
    return fields.String(
        required=required, validate=FullMatch(UUID4_PATTERN, error="Not a uuid4.")
    )


class AddressSchema(Schema):
    street = text(required=True)
    city = text(required=True)
    state = text(required=True)
    postalCode = text(required=True)
    country = text(required=True)


class ItemSchema(Schema):
    itemId = text(required=True)
    quantity = StrictInteger(required=True, validate=validate.Range(min=1))
    price = StrictNumber(required=True, validate=validate.Range(min=0))
    name = text()


def address(*, required: bool = True) -> fields.Nested:
    return fields.Nested(AddressSchema, required=required)


def timestamp(*, required: bool = False) -> fields.DateTime:
    return fields.DateTime(required=required)


class PartialUpdateSchema(Schema):
    """An update that must change at least one of its (all optional) fields."""

    @validates_schema
    def _at_least_one(self, data: dict, **_: object) -> None:
        if not data:
            names = " and/or ".join(self.fields)
            raise ValidationError(f"Send {names}.", field_name="_schema")
