"""bench.ab's per-variant environment (launch.spec.with_env) reaches what a restarted
component renders before it starts (the gateway's gateway.json), not only its process env."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import MappingProxyType

from launch.spec import Component, gateway, with_env


def test_the_gateways_prepare_renders_from_the_new_env():
    component = gateway(Path("/tmp/x"), 8000, MappingProxyType({"P_VALUE": "100"}))

    changed = with_env(component, {"TRACE_SAMPLE_RATIO": "0"})

    assert dict(changed.env) == {"P_VALUE": "100", "TRACE_SAMPLE_RATIO": "0"}
    prepare = changed.prepare
    assert isinstance(prepare, partial) and prepare.func is component.prepare.func
    assert prepare.args == (Path("/tmp/x"), changed.env)


def test_a_prepare_that_takes_no_env_is_kept():
    prepare = partial(print, "x")
    component = Component("c", ("true",), {}, Path("/tmp/c.log"), prepare=prepare)
    assert with_env(component, {"A": "1"}).prepare is prepare
