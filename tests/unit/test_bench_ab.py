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


def test_propagation_rounds_print_one_figure_per_round_per_row(capsys):
    from bench.ab import PROPAGATION_FIELDS, _print_propagation

    def row(per_user: int, base: float) -> dict:
        return {
            "orders_per_user": per_user,
            **{f: base + i for i, f in enumerate(PROPAGATION_FIELDS)},
        }

    rounds = [{"rows": [row(1, 1.0), row(10, 10.0)]}, {"rows": [row(1, 2.0), row(10, 20.0)]}]
    _print_propagation({"A": rounds, "B": []})

    lines = capsys.readouterr().out.strip().splitlines()
    assert (
        lines[1] == "  A   1 orders/user  p50_ms 1.0/2.0  p99_ms 2.0/3.0  "
        "end_to_end_p50_ms 3.0/4.0  end_to_end_p99_ms 4.0/5.0  put_p50_ms 5.0/6.0"
    )
    assert lines[2].startswith("  A  10 orders/user  p50_ms 10.0/20.0  ")
    assert len(lines) == 3  # a variant with no rounds prints nothing
