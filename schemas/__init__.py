"""Marshmallow schemas: the one source of validation, Mongo validators and OpenAPI."""
