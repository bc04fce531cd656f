"""The route -> ACL group table of SPEC §7 and the paths open without credentials."""

from __future__ import annotations

import pytest

from common.auth import acl


@pytest.mark.parametrize(
    "method, path, group",
    [
        ("GET", "/users/u1", "users:read"),
        ("GET", "/users/u1/", "users:read"),
        ("HEAD", "/users/u1", "users:read"),
        ("POST", "/users", "users:write"),
        ("POST", "/users/", "users:write"),
        ("PUT", "/users/u1", "users:write"),
        ("GET", "/orders", "orders:read"),
        ("GET", "/orders/", "orders:read"),
        ("GET", "/orders/o1", "orders:read"),
        ("POST", "/orders/", "orders:write"),
        ("PUT", "/orders/o1/status", "orders:write"),
        ("PUT", "/orders/o1/details/", "orders:write"),
    ],
)
def test_each_route_needs_its_group(method, path, group):
    assert acl.group_for(method, path) == group
    assert acl.is_protected(path)
    assert not acl.is_open(method, path)


@pytest.mark.parametrize(
    "method, path",
    [("DELETE", "/users/u1"), ("GET", "/users"), ("PUT", "/orders/o1"), ("POST", "/users/u1")],
)
def test_methods_spec_does_not_list_match_no_group_but_stay_protected(method, path):
    assert acl.group_for(method, path) is None
    assert acl.is_protected(path)


@pytest.mark.parametrize(
    "path", ["/health", "/docs", "/docs/", "/docs/assets/swagger-ui.css", "/openapi.json"]
)
def test_open_paths_need_no_credentials_for_get_only(path):
    assert acl.is_open("GET", path) and acl.is_open("HEAD", path)
    assert not acl.is_open("POST", path)
    assert not acl.is_protected(path)


def test_ready_is_open_at_the_edge_only():
    assert not acl.is_open("GET", "/ready")
    assert acl.is_open("GET", "/ready", acl.EDGE_OPEN_PATHS)


@pytest.mark.parametrize("path", ["/usersx", "/ordersfoo/1", "/docs/assets/a/b", "/openapi.jsonx"])
def test_lookalike_paths_are_neither_open_nor_protected(path):
    assert not acl.is_open("GET", path)
    assert not acl.is_protected(path)
