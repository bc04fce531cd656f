"""Typed remote errors: the edge maps these types to HTTP statuses, never their text.

`deserialize_to_instance` makes nameko rebuild the same class (with its arguments)
on the calling side, so `except UserNotFound` works across RabbitMQ.
"""

from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""


@deserialize_to_instance
class ValidationFailed(ServiceError):
    """The payload broke a schema rule; `errors` maps each field to its messages."""

    def __init__(self, errors: dict, message: str = "Request validation failed.") -> None:
        super().__init__(errors, message)
        self.errors = errors
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} {self.errors}"


class NotFound(ServiceError):
    kind = "Record"

    def __init__(self, identifier: str) -> None:
        super().__init__(identifier)
        self.identifier = identifier

    def __str__(self) -> str:
        return f"{self.kind} {self.identifier!r} not found."


@deserialize_to_instance
class UserNotFound(NotFound):
    kind = "User"


@deserialize_to_instance
class OrderNotFound(NotFound):
    kind = "Order"


@deserialize_to_instance
class EmailTaken(ServiceError):
    """An email of the request already belongs to another user."""

    def __init__(self, emails: list[str]) -> None:
        super().__init__(emails)
        self.emails = emails

    def __str__(self) -> str:
        return f"Email already in use: {', '.join(self.emails)}."


@deserialize_to_instance
class UnknownUser(ServiceError):
    """An order names a userId that no user has."""

    def __init__(self, user_id: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id

    def __str__(self) -> str:
        return f"No user with userId {self.user_id!r}."


@deserialize_to_instance
class RequestRedelivered(ServiceError):
    """A write request the broker handed out again (its first consumer's node or connection
    went away mid-call): it may already have been applied, so it is not run twice."""

    def __str__(self) -> str:
        return "The request was redelivered after a broker failover; retry it."


@deserialize_to_instance
class StorageUnavailable(ServiceError):
    """MongoDB could not be reached; the caller should retry later."""

    def __init__(self, detail: str = "The database is unreachable.") -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


@deserialize_to_instance
class UpdateConflict(ServiceError):
    """The record kept changing under this update; the client may simply retry."""

    def __init__(self, identifier: str) -> None:
        super().__init__(identifier)
        self.identifier = identifier

    def __str__(self) -> str:
        return f"{self.identifier!r} was changed concurrently too often; retry the request."


@deserialize_to_instance
class StoredDocumentInvalid(ServiceError):
    """A stored record breaks its document schema (written by another tool): not served."""

    def __init__(self, kind: str, identifier: str, fields: list[str]) -> None:
        super().__init__(kind, identifier, fields)
        self.kind = kind
        self.identifier = identifier
        self.fields = fields

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.identifier!r} is stored in a shape the API cannot serve "
            f"(fields: {', '.join(self.fields)}); an operator must repair it."
        )
