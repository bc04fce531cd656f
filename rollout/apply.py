"""Putting a weight in force: the local nginx gateway (re-render + graceful reload) or Kong
DB-less (POST the re-rendered declarative config to its admin API); the weight in force is
persisted in <run-dir>/p_value for `micro-rollout status`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
import yaml

from kong.local_gateway import gateway_dir, reload_gateway
from kong.render import parse_p_value, render_for_targets, write_atomically

SPLIT_UPSTREAM = "users-upstream"
_TIMEOUT = 10.0


class Gateway(Protocol):
    name: str

    def current(self) -> int: ...

    def apply(self, weight: int) -> None: ...


def weight_of(config: Mapping) -> int:
    """P_VALUE of a Kong config: v1's share of the split upstream's weights."""
    (upstream,) = [u for u in config["upstreams"] if u["name"] == SPLIT_UPSTREAM]
    v1, v2 = (int(t["weight"]) for t in upstream["targets"])
    return round(100 * v1 / (v1 + v2))


@dataclass
class LocalGateway:
    """The nginx `make run` / `make up` started, rendered from env like `make gateway-reload`."""

    run_dir: Path
    env: Mapping[str, str]
    name: str = "local gateway"

    def current(self) -> int:
        kong_yml = gateway_dir(self.run_dir) / "kong.yml"
        if not kong_yml.exists():
            raise RuntimeError(f"{kong_yml} missing: is the local stack (make up) running?")
        return weight_of(yaml.safe_load(kong_yml.read_text(encoding="utf-8")))

    def apply(self, weight: int) -> None:
        # Returns once nginx's old workers are gone: every new request sees the new weights.
        reload_gateway(self.run_dir, {**self.env, "P_VALUE": str(parse_p_value(weight))})


@dataclass
class KongAdmin:
    """Kong DB-less (compose): the whole declarative config is replaced through POST /config."""

    admin_url: str
    env: Mapping[str, str]
    name: str = "Kong"

    def current(self) -> int:
        response = requests.get(
            f"{self.admin_url.rstrip('/')}/upstreams/{SPLIT_UPSTREAM}/targets", timeout=_TIMEOUT
        )
        response.raise_for_status()
        targets = response.json()["data"]
        targets.sort(key=lambda t: t["target"] != self.v1_target)  # v1's target first
        return weight_of({"upstreams": [{"name": SPLIT_UPSTREAM, "targets": targets}]})

    @property
    def v1_target(self) -> str:
        return self.env.get("KONG_V1_TARGET", "edge-v1:8000")

    def render(self, weight: int) -> str:
        env = {**self.env, "P_VALUE": str(weight)}
        return render_for_targets(
            env, self.v1_target, self.env.get("KONG_V2_TARGET", "edge-v2:8000")
        )

    def apply(self, weight: int) -> None:
        response = requests.post(
            f"{self.admin_url.rstrip('/')}/config",
            files={"config": ("kong.yml", self.render(weight), "application/x-yaml")},
            timeout=_TIMEOUT,
        )
        if response.status_code >= 300:
            raise RuntimeError(
                f"Kong refused the config for P_VALUE={weight}: "
                f"{response.status_code} {response.text[:500]}"
            )


def save_state(run_dir: Path, gateway: str, weight: int) -> None:
    """<run-dir>/p_value: the weight in force (first line, for scripts) and where and when."""
    state = {"p_value": weight, "gateway": gateway, "applied_at": time.time()}
    write_atomically(run_dir / "p_value", f"{weight}\n{json.dumps(state)}\n")


def load_state(run_dir: Path) -> dict | None:
    path = run_dir / "p_value"
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[1]) if len(lines) > 1 else {"p_value": int(lines[0])}
