"""/openapi.json is OpenAPI 3.1 built from the marshmallow schemas; /docs is served offline."""

from __future__ import annotations

import re

import pytest

from schemas.fields import AddressSchema, ItemSchema
from schemas.orders import OrderCreateSchema
from tests.support.edge_fakes import FakeRpc, build_app

OPERATIONS = {
    ("/users/", "post"): {201, 400, 401, 403, 409, 413, 415, 429, 503, 504},
    ("/users/{userId}", "get"): {200, 401, 403, 404, 429, 503, 504},
    ("/users/{userId}", "put"): {200, 400, 401, 403, 404, 409, 413, 415, 429, 503, 504},
    ("/orders/", "post"): {201, 400, 401, 403, 413, 415, 422, 429, 503, 504},
    ("/orders/", "get"): {200, 400, 401, 403, 429, 503, 504},
    ("/orders/{orderId}", "get"): {200, 401, 403, 404, 429, 503, 504},
    ("/orders/{orderId}/status", "put"): {200, 400, 401, 403, 404, 413, 415, 429, 503, 504},
    ("/orders/{orderId}/details", "put"): {200, 400, 401, 403, 404, 413, 415, 429, 503, 504},
    ("/health", "get"): {200},
    ("/ready", "get"): {200, 503},
}


@pytest.fixture(params=["users_v1", "users_v2"])
def document(request) -> dict:
    client = build_app(FakeRpc(), USERS_SERVICE=request.param).test_client()
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_is_openapi_31_with_every_operation(document) -> None:
    assert document["openapi"] == "3.1.0"
    found = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), list(OPERATIONS))
def test_errors_are_documented_as_problem_json(document, path: str, method: str) -> None:
    responses = document["paths"][path][method]["responses"]
    assert OPERATIONS[(path, method)] <= {int(code) for code in responses}
    for code, response in responses.items():
        if int(code) >= 400:
            content = response["content"]["application/problem+json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
        if int(code) == 503:
            assert "Retry-After" in response["headers"]
        if int(code) == 414:  # gunicorn's own answer: no app headers
            assert "{" in path
            continue
        assert "X-Request-ID" in response["headers"]
        if path.startswith("/users") and int(code) != 429:  # 429: the gateway's answer
            assert response["headers"]["X-Users-Version"]["schema"]["enum"] == ["v1", "v2"]


def test_schemas_come_from_marshmallow(document) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["Address"]["required"]) == {
        name for name, field in AddressSchema().fields.items() if field.required
    }
    assert set(schemas["Item"]["properties"]) == set(ItemSchema().fields)
    assert set(schemas["OrderCreate"]["properties"]) == set(OrderCreateSchema().fields)
    # Unknown fields are refused (marshmallow RAISE) and updates must change something.
    assert schemas["OrderCreate"]["additionalProperties"] is False
    assert schemas["UserContactUpdate"]["minProperties"] == 1
    assert schemas["OrderDetailsUpdate"]["minProperties"] == 1
    status = schemas["OrderStatusUpdate"]["properties"]["orderStatus"]
    assert status["enum"] == ["under process", "shipping", "delivered"]


def test_updates_answer_before_and_after(document) -> None:
    schema = document["paths"]["/users/{userId}"]["put"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert schema["items"] == {"$ref": "#/components/schemas/User"}
    assert schema["minItems"] == schema["maxItems"] == 2


def test_list_documents_paging_parameters(document) -> None:
    params = {p["name"]: p for p in document["paths"]["/orders/"]["get"]["parameters"]}
    assert params["status"]["required"] is True
    assert params["limit"]["schema"]["maximum"] == 1000
    assert params["offset"]["schema"]["maximum"] == 2**53 - 1
    assert set(params) == {"status", "limit", "offset", "userId"}


def test_created_records_link_to_their_operations(document) -> None:
    links = document["paths"]["/orders/"]["post"]["responses"]["201"]["links"]
    assert links["GetOrder"] == {
        "operationId": "getOrder",
        "parameters": {"orderId": "$response.body#/orderId"},
    }
    assert "UpdateUser" in document["paths"]["/users/"]["post"]["responses"]["201"]["links"]


def test_document_loads_in_schemathesis(document) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(document)
    assert len(list(schema.get_all_operations())) == len(OPERATIONS)


def test_swagger_ui_is_served_without_a_cdn() -> None:
    client = build_app(FakeRpc()).test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    assert not re.search(r"(src|href)=\"https?://", html)
    for asset in re.findall(r"(?:src|href)=\"(/docs/assets/[^\"]+)\"", html):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/docs/assets/..%2Fflask_swagger_ui.py").status_code == 404


def test_status_texts_are_derived_from_the_error_table() -> None:
    from http_edge.openapi import STATUS_TEXT
    from http_edge.problems import ERROR_TABLE

    for _, problem in ERROR_TABLE:
        assert problem.title in STATUS_TEXT[problem.status]
    assert "Concurrent update, retry" in STATUS_TEXT[409]  # UpdateConflict was missing


def test_each_operations_error_statuses_come_from_its_error_types(document) -> None:
    from http_edge.openapi import OPERATIONS
    from http_edge.problems import problem_for

    for op in OPERATIONS:
        documented = {int(code) for code in document["paths"][op.path][op.method]["responses"]}
        for error_type in op.errors:
            assert problem_for(error_type.__new__(error_type)).status in documented
    reads = document["paths"]["/orders/{orderId}"]["get"]["responses"]
    assert "Stored record breaks its schema" in reads["409"]["description"]


def test_every_protected_operation_declares_both_schemes_and_the_auth_answers(document) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header",
                                 "name": "apikey"}  # fmt: skip
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["bearerAuth"]["bearerFormat"] == "JWT"
    for path, method in OPERATIONS:
        operation = document["paths"][path][method]
        if path in ("/health", "/ready"):
            assert operation["security"] == []
            continue
        assert operation["security"] == [{"apiKey": []}, {"bearerAuth": []}]
        responses = operation["responses"]
        assert {"401", "403", "429"} <= set(responses)
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"]
        assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
            responses["429"]["headers"]
        )


def test_the_declared_401_is_what_the_edge_answers() -> None:
    from tests.support.edge_fakes import anonymous_client

    app = build_app(FakeRpc())
    document = app.test_client().get("/openapi.json").get_json()
    response = anonymous_client(app).get("/users/u1")
    declared = document["paths"]["/users/{userId}"]["get"]["responses"]["401"]["headers"]
    assert response.status_code == 401
    assert set(declared) <= set(response.headers.keys())
