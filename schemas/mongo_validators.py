"""MongoDB `$jsonSchema` validators generated from the marshmallow document schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from schemas.orders import OrderDocumentSchema
from schemas.users import UserDocumentSchema

NUMBER_TYPES = ["int", "long", "double", "decimal"]
INTEGER_TYPES = ["int", "long"]

# Bookkeeping fields the services keep next to the contract fields (never sent to clients).
# eventTraceparent: the W3C trace context of the update whose event is pending (tracing).
# createdBy / updatedBy: the caller (SPEC §7) that created and last changed the document.
AUDIT = {"createdBy": {"bsonType": "string"}, "updatedBy": {"bsonType": "string"}}
USER_INTERNAL = {
    "_id": {},
    "eventPendingSince": {"bsonType": "date"},
    "eventTraceparent": {"bsonType": "string", "maxLength": 55},
    **AUDIT,
}
ORDER_INTERNAL = {
    "_id": {},
    **AUDIT,
    "userVersion": {"bsonType": INTEGER_TYPES},
    "detailsVersion": {"bsonType": INTEGER_TYPES},
}


def whole_string_pattern(pattern: str) -> str:
    """PCRE's `$` (like Python's) also matches before a final newline; `\\z` ends the subject."""
    return pattern[:-1] + r"\z" if pattern.endswith("$") else pattern


def _apply_validators(field: fields.Field, spec: dict[str, Any]) -> None:
    is_array = spec.get("bsonType") == "array"
    is_number = spec.get("bsonType") in (NUMBER_TYPES, INTEGER_TYPES)
    for rule in field.validators:
        if isinstance(rule, validate.Length):
            if rule.min is not None:
                spec["minItems" if is_array else "minLength"] = rule.min
            if rule.max is not None:
                spec["maxItems" if is_array else "maxLength"] = rule.max
        elif isinstance(rule, validate.Regexp):
            spec["pattern"] = whole_string_pattern(rule.regex.pattern)
        elif isinstance(rule, validate.OneOf):
            spec["enum"] = list(rule.choices)
        elif isinstance(rule, validate.Range) and is_number:
            if rule.min is not None:
                spec["minimum"] = rule.min
            if rule.max is not None:
                spec["maximum"] = rule.max


def field_to_bson(field: fields.Field) -> dict[str, Any]:
    """Translate one marshmallow field (with its validators) into a `$jsonSchema` node."""
    if isinstance(field, fields.Nested):
        nested = field.schema
        spec = object_schema(nested)
    elif isinstance(field, fields.List):
        spec = {"bsonType": "array", "items": field_to_bson(field.inner)}
    elif isinstance(field, fields.DateTime):
        spec = {"bsonType": "date"}
    elif isinstance(field, fields.Integer):
        spec = {"bsonType": INTEGER_TYPES}
    elif isinstance(field, fields.Number):
        spec = {"bsonType": NUMBER_TYPES}
    elif isinstance(field, fields.Boolean):
        spec = {"bsonType": "bool"}
    elif isinstance(field, fields.String):
        spec = {"bsonType": "string"}
    else:  # pragma: no cover - a new field type must be mapped deliberately
        raise TypeError(f"No $jsonSchema mapping for {type(field).__name__}")
    _apply_validators(field, spec)
    return spec


def object_schema(schema: Schema, internal: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = {name: field_to_bson(field) for name, field in schema.fields.items()}
    properties.update(internal or {})
    required = sorted(name for name, field in schema.fields.items() if field.required)
    node: dict[str, Any] = {
        "bsonType": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        node["required"] = required
    return node


def users_validator() -> dict[str, Any]:
    return {"$jsonSchema": object_schema(UserDocumentSchema(), USER_INTERNAL)}


def orders_validator() -> dict[str, Any]:
    return {"$jsonSchema": object_schema(OrderDocumentSchema(), ORDER_INTERNAL)}


VALIDATORS = {"users": users_validator, "orders": orders_validator}
