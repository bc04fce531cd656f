"""Over the real broker, every RPC method refuses ids that are not strings (issue 11 item 4:
`orders.update_status({"$in": [orderId]}, ...)` used to change that order)."""

from __future__ import annotations

import pytest

from tests.support.data import ADDRESS
from workers.exceptions import ValidationFailed

pytestmark = pytest.mark.integration
OPERATOR_IDS = [{"$in": ["x"]}, {"$ne": None}, {"$gt": ""}, ["x"], 12, None]


@pytest.mark.parametrize("bad_id", OPERATOR_IDS, ids=repr)
def test_no_method_lets_an_id_reach_a_query_as_an_operator(stack, rpc, bad_id):
    user = rpc.users_v1.create({"emails": ["filter@example.com"], "deliveryAddress": ADDRESS})
    order = rpc.orders.create({"userId": user["userId"], "items": [{"itemId": "a", "quantity": 1,
                               "price": 1}], "userEmails": user["emails"],
                               "deliveryAddress": ADDRESS, "orderStatus": "shipping"})  # fmt: skip
    unchanged = rpc.orders.get(order["orderId"])
    calls = {
        "users_v1.get": lambda: rpc.users_v1.get(bad_id),
        "users_v2.get": lambda: rpc.users_v2.get(bad_id),
        "users_v1.update": lambda: rpc.users_v1.update(bad_id, {"deliveryAddress": ADDRESS}),
        "users_v2.update": lambda: rpc.users_v2.update(bad_id, {"deliveryAddress": ADDRESS}),
        "orders.get": lambda: rpc.orders.get(bad_id),
        "orders.update_status": lambda: rpc.orders.update_status(bad_id, "delivered"),
        "orders.update_details": lambda: rpc.orders.update_details(
            bad_id, {"userEmails": ["forged@example.com"]}
        ),
        "orders.list": lambda: rpc.orders.list("shipping", 10, 0, bad_id),
    }
    for name, call in calls.items():
        if bad_id is None and name == "orders.list":
            continue  # user_id=None means "no filter", as SPEC §3 says
        # the typed error comes back as its class (workers.exceptions is imported here)
        with pytest.raises(ValidationFailed):
            call()

    assert rpc.orders.get(order["orderId"]) == unchanged
    assert rpc.users_v1.get(user["userId"])["version"] == 1
