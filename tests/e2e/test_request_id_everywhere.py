"""One request id from the gateway to the last worker: response header, problem body, and
the log lines of the gateway, the edge and every worker the request reached."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.auth import api
from tests.support.data import address
from tests.support.gateway import running_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ADDRESS = address(state="IL", postalCode="62701")
UNKNOWN_USER = "00000000-0000-4000-8000-00000000dead"


def json_lines(path: Path) -> list[dict]:
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def order_for_unknown_user(url: str, request_id: str) -> requests.Response:
    # gateway -> edge -> orders.create -> users.get: two workers, one 422 problem.
    body = {
        "userId": UNKNOWN_USER,
        "items": [{"itemId": "sku-1", "quantity": 1, "price": 1.0}],
        "userEmails": ["rid@example.com"],
        "deliveryAddress": ADDRESS,
        "orderStatus": "under process",
    }
    return api.post(f"{url}/orders/", json=body, headers={"X-Request-ID": request_id}, timeout=15)


def worker_calls(edge_stack, request_id: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        calls = [
            line["message"]
            for line in json_lines(edge_stack.workers.log_path)
            if line.get("request_id") == request_id and line["logger"] == "workers.calls"
        ]
        if len(calls) >= 2 or time.monotonic() > deadline:
            return sorted(calls)
        time.sleep(0.1)


@pytest.mark.parametrize(
    "sent", ["x" * 7000, "bad id with spaces", "ok-id:1.2_3"], ids=["7000 chars", "spaces", "safe"]
)
def test_the_same_request_id_is_in_the_header_the_body_and_every_log(edge_stack, tmp_path, sent):
    v1, v2 = edge_stack.v1, edge_stack.v2
    with running_gateway(tmp_path, p_value="50", v1_port=v1.port, v2_port=v2.port) as url:
        response = order_for_unknown_user(url, sent)
    access_log = (tmp_path / "gateway" / "logs" / "access.log").read_text()

    assert response.status_code == 422, response.text
    request_id = response.headers["X-Request-ID"]
    if sent == "ok-id:1.2_3":
        assert request_id == sent
    else:
        assert uuid.UUID(request_id) and request_id != sent
    assert response.json()["requestId"] == request_id
    assert f"rid={request_id} " in access_log
    edge_lines = [
        line
        for edge in (v1, v2)
        for line in json_lines(edge.log_path)
        if line.get("request_id") == request_id
    ]
    assert [(line["logger"], line["status"]) for line in edge_lines] == [("http_edge.access", 422)]
    assert worker_calls(edge_stack, request_id) == [
        "orders.create UnknownUser",
        "users_v2.get UserNotFound",
    ]
    if request_id != sent:  # the client's unsafe bytes reached no log
        for path in (v1.log_path, v2.log_path, edge_stack.workers.log_path):
            assert sent not in path.read_text(errors="replace")
