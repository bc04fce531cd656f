"""The local gateway samples the traces it starts as the edges' sampler would (TRACE_SAMPLE_RATIO,
TraceIdRatioBased by the trace id), and passes a client's valid traceparent on unchanged:
a real nginx rendered by prepare_gateway() in front of stub edges that record what reached them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from tests.support.auth import auth_headers
from tests.support.gateway import StubEdge, running_gateway, stub_edge

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")
REQUESTS = 60


@pytest.fixture(scope="module")
def edges() -> Iterator[tuple[StubEdge, StubEdge]]:
    with stub_edge("v1") as v1, stub_edge("v2") as v2:
        yield v1, v2


def forwarded(
    edges: tuple[StubEdge, StubEdge], run_dir: Path, ratio: str | None, sent: str | None = None
) -> list[str]:
    """The traceparent each of REQUESTS GET /users/{id} carried to the edge, through a gateway
    started with TRACE_SAMPLE_RATIO=`ratio` (None: unset) and a client header `sent`."""
    v1, v2 = edges
    v1.headers.clear()
    extra = {"TRACE_SAMPLE_RATIO": ratio} if ratio is not None else {}
    headers = {**auth_headers(), **({"traceparent": sent} if sent else {})}
    with (
        running_gateway(
            run_dir, p_value="100", v1_port=v1.port, v2_port=v2.port, extra_env=extra
        ) as url,
        requests.Session() as http,
    ):
        for i in range(REQUESTS):
            response = http.get(f"{url}/users/u{i}", headers=headers, timeout=10)
            assert response.status_code == 200, response.text
    assert len(v1.headers) == REQUESTS
    return [h["traceparent"] for h in v1.headers]


def flags(traceparents: list[str]) -> set[str]:
    matches = [TRACEPARENT.match(tp) for tp in traceparents]
    assert all(matches), traceparents
    return {m[3] for m in matches if m}


def test_ratio_zero_starts_only_unsampled_traces(edges, tmp_path):
    sent = forwarded(edges, tmp_path, "0")
    assert flags(sent) == {"00"}
    assert len({tp.split("-")[1] for tp in sent}) == REQUESTS  # still a new trace each


@pytest.mark.parametrize("ratio", ["1", None])  # unset: common.defaults' 1
def test_ratio_one_samples_every_new_trace(edges, tmp_path, ratio):
    assert flags(forwarded(edges, tmp_path, ratio)) == {"01"}


def test_a_ratio_between_decides_by_the_trace_id_as_the_edges_sampler_does(edges, tmp_path):
    sent = forwarded(edges, tmp_path, "0.5")
    sampler = TraceIdRatioBased(0.5)
    for traceparent in sent:
        trace_id = int(traceparent.split("-")[1], 16)
        decision = sampler.should_sample(None, trace_id, "GET /users/<user_id>").decision
        expected = "01" if decision == Decision.RECORD_AND_SAMPLE else "00"
        assert traceparent.endswith(f"-{expected}"), traceparent
    assert flags(sent) == {"00", "01"}  # 60 draws at 0.5: both, but for 2 in 10^18


@pytest.mark.parametrize("ratio", ["0", "1"])
@pytest.mark.parametrize("client_flags", ["00", "01"])
def test_a_clients_traceparent_passes_unchanged_whatever_the_ratio(
    edges, tmp_path, ratio, client_flags
):
    sent = f"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{client_flags}"
    assert set(forwarded(edges, tmp_path, ratio, sent)) == {sent}
