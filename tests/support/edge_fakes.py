"""Fakes for the edge unit tests: an RPC client that records calls, and an app wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from http_edge import create_app
from tests.support.auth import auth_headers


@dataclass
class RecordedCall:
    service: str
    method: str
    args: tuple
    kwargs: dict
    context: dict


@dataclass
class FakeRpc:
    """Stands in for NamekoRpcClient: records calls, answers with `reply` or raises `error`."""

    reply: Any = None
    error: BaseException | None = None
    responder: Callable[[RecordedCall], Any] | None = None
    ping_results: dict[str, BaseException | None] = field(default_factory=dict)
    ping_error: BaseException | None = None
    calls: list[RecordedCall] = field(default_factory=list)

    def call(self, service: str, method: str, *args: Any, context: dict, **kwargs: Any) -> Any:
        recorded = RecordedCall(service, method, args, kwargs, dict(context))
        self.calls.append(recorded)
        if self.error is not None:
            raise self.error
        if self.responder is not None:
            return self.responder(recorded)
        if self.reply is not None:
            return self.reply
        if method in ("update", "update_status", "update_details"):
            return [{"state": "before"}, {"state": "after"}]
        return {"service": service, "method": method}

    def ping(
        self, services: Iterable[str], timeout: float, context: dict
    ) -> dict[str, BaseException | None]:
        self.calls.append(RecordedCall("*", "ping", tuple(services), {}, dict(context)))
        if self.ping_error is not None:
            raise self.ping_error
        return {service: self.ping_results.get(service) for service in services}

    @property
    def last(self) -> RecordedCall:
        return self.calls[-1]


class CredentialedClient(FlaskClient):
    """A test client sending the session's API key with every request (headers may override)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, value in auth_headers().items():
            self.environ_base["HTTP_" + name.upper().replace("-", "_")] = value


def build_app(fake: FakeRpc, **config: Any) -> Flask:
    """The edge on `fake`; its test_client() authenticates (anonymous_client() does not)."""
    app = create_app({"RPC_CLIENT": fake, "LOG_LEVEL": "WARNING", **config})
    app.test_client_class = CredentialedClient
    return app


def anonymous_client(app: Flask) -> FlaskClient:
    """A test client sending no credentials at all."""
    return FlaskClient(app, app.response_class, use_cookies=False)
