"""bench/nameko_peer.py: the peer answers like a gateway (status, problem+json), not a 500."""

from __future__ import annotations

import json
from unittest.mock import Mock

from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bench.nameko_peer import NamekoGatewayPeer
from workers.exceptions import EmailTaken, UnknownUser, UserNotFound, ValidationFailed


def request(method: str, body: str | None) -> Request:
    builder = EnvironBuilder(method=method, data=body, content_type="application/json")
    return Request(builder.get_environ())


def test_create_passes_the_body_to_users_v1_and_answers_201() -> None:
    peer = worker_factory(NamekoGatewayPeer)
    peer.users.create.return_value = {"userId": "u1"}

    response = peer.create_user(request("POST", '{"emails": ["a@b.example"]}'))

    peer.users.create.assert_called_once_with({"emails": ["a@b.example"]})
    assert (response.status_code, json.loads(response.get_data())) == (201, {"userId": "u1"})


def test_bodies_that_are_not_a_json_object_are_400_without_an_rpc() -> None:
    peer = worker_factory(NamekoGatewayPeer)
    for body in ("nope", "[1, 2]", ""):
        response = peer.create_user(request("POST", body))
        assert response.status_code == 400
        assert response.mimetype == "application/problem+json"
    assert not peer.users.create.called


def test_domain_errors_from_the_worker_become_their_4xx() -> None:
    peer = worker_factory(NamekoGatewayPeer)
    cases = [(ValidationFailed({"emails": ["required"]}), 400), (EmailTaken(["a@b.example"]), 409),
             (UserNotFound("u1"), 404)]  # fmt: skip
    for error, status in cases:
        peer.users.update = Mock(side_effect=error)
        response = peer.update_user(request("PUT", "{}"), "u1")
        assert response.status_code == status, error
        assert json.loads(response.get_data())["status"] == status


def test_an_order_goes_to_the_orders_service_and_an_unknown_user_is_422() -> None:
    peer = worker_factory(NamekoGatewayPeer)
    peer.orders.create.return_value = {"orderId": "o1"}

    created = peer.create_order(request("POST", '{"userId": "u1"}'))
    peer.orders.create = Mock(side_effect=UnknownUser("u1"))
    unknown = peer.create_order(request("POST", '{"userId": "u1"}'))

    assert (created.status_code, json.loads(created.get_data())) == (201, {"orderId": "o1"})
    assert unknown.status_code == 422
    assert not peer.users.create.called
