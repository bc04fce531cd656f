"""The local gateway's trace sampling as rendered into gateway.json (kong/lua_config.py): the
ratio comes from TRACE_SAMPLE_RATIO, else common.defaults, and its bound is OpenTelemetry's
TraceIdRatioBased bound, so the Lua's decision for a trace id is the edges' decision."""

from __future__ import annotations

import json
import random

import pytest
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from common import defaults
from kong.local_gateway import write_gateway_files
from kong.lua_config import trace_sampling


def lua_decides(sampling: dict, trace_id: str) -> bool:
    # kong/lua/traceparent.lua's rule, word for word: all, or the low 16 hex digits below.
    return sampling["all"] or trace_id[16:] < sampling["below"]


def otel_decides(ratio: float, trace_id: str) -> bool:
    result = TraceIdRatioBased(ratio).should_sample(None, int(trace_id, 16), "x")
    return result.decision == Decision.RECORD_AND_SAMPLE


def test_ratio_one_samples_all_and_zero_none():
    assert trace_sampling(1.0) == {"ratio": 1.0, "all": True, "below": "f" * 16}
    assert trace_sampling(0.0) == {"ratio": 0.0, "all": False, "below": "0" * 16}


@pytest.mark.parametrize("ratio", [0.0, 1e-9, 0.1, 0.25, 0.5, 0.9, 1 - 1e-12, 1.0])
def test_the_rule_agrees_with_trace_id_ratio_based_for_every_id(ratio):
    sampling = trace_sampling(ratio)
    rng = random.Random(ratio)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(2000)]
    bound = TraceIdRatioBased(ratio).bound
    # The ids right at the bound, where an off-by-one would show.
    for low in (bound - 1, bound, bound + 1):
        if 0 <= low < 1 << 64:
            ids.append(f"{rng.getrandbits(64):016x}{low:016x}")
    assert [lua_decides(sampling, t) for t in ids] == [otel_decides(ratio, t) for t in ids]


def rendered(tmp_path, env: dict[str, str]) -> dict:
    conf = write_gateway_files(tmp_path, {"P_VALUE": "100", **env})
    return json.loads((conf.parent / "gateway.json").read_text())


def test_the_gateway_renders_trace_sample_ratio(tmp_path):
    table = rendered(tmp_path, {"TRACE_SAMPLE_RATIO": "0.25"})
    assert table["trace_sampling"] == trace_sampling(0.25)
    settings = json.loads((tmp_path / "gateway" / "settings.json").read_text())
    assert settings["TRACE_SAMPLE_RATIO"] == "0.25"  # a later reload keeps it


@pytest.mark.parametrize("env", [{}, {"TRACE_SAMPLE_RATIO": ""}])
def test_without_a_ratio_the_gateway_uses_the_shared_default(tmp_path, env):
    table = rendered(tmp_path, env)
    assert table["trace_sampling"] == trace_sampling(defaults.TRACE_SAMPLE_RATIO)


@pytest.mark.parametrize(("raw", "ratio"), [("7", 1.0), ("-1", 0.0)])
def test_the_ratio_is_clamped_as_the_edges_clamp_it(tmp_path, raw, ratio):
    assert rendered(tmp_path, {"TRACE_SAMPLE_RATIO": raw})["trace_sampling"]["ratio"] == ratio
