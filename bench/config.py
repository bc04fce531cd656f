"""Bench settings: ports, URIs and durations, isolated from a developer's `make up` stack."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from common import defaults
from common.auth.store import ensure_local_credentials
from http_edge.config import DEFAULTS as EDGE_DEFAULTS
from launch.settings import StackSettings

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
# Everything the bench writes at run time lives here, never under .run/{mongo,logs,pids}.
RUN_DIR = ROOT / ".run" / "bench"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


@dataclass(frozen=True)
class BenchConfig:
    quick: bool = False
    # Ports well away from the defaults (8000/8101/8102/27017) and from the e2e tests.
    gateway_port: int = field(default_factory=lambda: _port("BENCH_GATEWAY_PORT", 8300))
    edge_v1_port: int = field(default_factory=lambda: _port("BENCH_EDGE_V1_PORT", 8301))
    edge_v2_port: int = field(default_factory=lambda: _port("BENCH_EDGE_V2_PORT", 8302))
    baseline_port: int = field(default_factory=lambda: _port("BENCH_BASELINE_PORT", 8303))
    peer_port: int = field(default_factory=lambda: _port("BENCH_PEER_PORT", 8304))
    mongo_port: int = field(default_factory=lambda: _port("BENCH_MONGO_PORT", 27300))
    # Named after the gateway port: a bench on other ports (another worktree) must not
    # reset this run's vhost, as one shared name "bench" did mid-run.
    vhost: str = field(
        default_factory=lambda: (
            os.environ.get("BENCH_VHOST") or f"bench-{_port('BENCH_GATEWAY_PORT', 8300)}"
        )
    )
    rabbit_host: str = os.environ.get("BENCH_RABBIT_HOST", "127.0.0.1")
    management_url: str = os.environ.get("BENCH_RABBIT_API", "http://127.0.0.1:15672/api")
    mongo_db: str = "bench"

    @property
    def credentials_file(self) -> Path:
        return RUN_DIR / "auth" / "credentials.json"

    def api_key(self) -> str:
        """The bench consumer's key (created on first use): the bench pays for auth too."""
        return ensure_local_credentials(self.credentials_file, "bench").api_key

    def auth_headers(self) -> dict[str, str]:
        return {"apikey": self.api_key()}

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@{self.rabbit_host}:5672/{self.vhost}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def baseline_url(self) -> str:
        return f"http://127.0.0.1:{self.baseline_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def edge_v1_url(self) -> str:
        return f"http://127.0.0.1:{self.edge_v1_port}"

    def stack_settings(self) -> StackSettings:
        """The launch settings: the environment, with the bench's own URIs and ports and the
        defaults pinned for what the figures depend on (P_VALUE, RPC_TIMEOUT)."""
        return StackSettings.from_env(
            {
                **os.environ,
                "AMQP_URI": self.amqp_uri,
                "MONGO_URI": self.mongo_uri,
                "MONGO_DB": self.mongo_db,
                "RPC_TIMEOUT": str(EDGE_DEFAULTS["RPC_TIMEOUT"]),
                "P_VALUE": str(defaults.P_VALUE),
                "GATEWAY_PORT": str(self.gateway_port),
                "EDGE_V1_PORT": str(self.edge_v1_port),
                "EDGE_V2_PORT": str(self.edge_v2_port),
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
                "AUTH_CREDENTIALS_FILE": str(self.credentials_file),
            }
        )

    # Durations and sizes: the full run stays near 12 minutes on 2 cores, --quick near 5.
    @property
    def concurrencies(self) -> tuple[int, ...]:
        return (1, 8, 32) if self.quick else (1, 8, 32, 64)

    @property
    def peer_concurrencies(self) -> tuple[int, ...]:
        # The Nameko-native peer is compared where issue 17 asks for it.
        return (1, 8, 32)

    @property
    def orders_concurrencies(self) -> tuple[int, ...]:
        # POST /orders, lean vs gateway vs peer (issue 17's "equivalent order insert").
        return (1, 8, 32)

    @property
    def http_seconds(self) -> int:
        return 3 if self.quick else 8

    @property
    def http_rounds(self) -> int:
        # Interleaved rounds (lean, gateway, peer alternate) expose the machine's noise;
        # even --quick keeps two so a ratio has a range.
        return 2

    @property
    def budget_requests(self) -> int:
        # A p99 over at least 1 000 samples per operation (issue 17).
        return 1000 if self.quick else 2000

    @property
    def rpc_seconds(self) -> int:
        return 3 if self.quick else 6

    @property
    def propagation_samples(self) -> int:
        # A p99 needs well over 100 samples: with 30 it was the maximum, and one stall of
        # the shared VM (90 ms, run 1807) decided the target on its own.
        return 40 if self.quick else 200

    @property
    def orders_large(self) -> int:
        return 20_000 if self.quick else 100_000

    @property
    def orders_small(self) -> int:
        return 1_000

    @property
    def scale_events(self) -> int:
        # Enough backlog for the whole window even at ~1 000 events/s.
        return 2000 if self.quick else 6000

    @property
    def scale_window_s(self) -> float:
        return 8.0 if self.quick else 15.0
