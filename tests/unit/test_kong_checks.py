"""Project rules on kong.yml that `deck validate` lets through."""

from __future__ import annotations

import copy

import pytest
import yaml

from kong.checks import check_config
from kong.render import render

GOOD = yaml.safe_load(render(50, "edge-v1:8000", "edge-v2:8000"))


def broken(change) -> list[str]:
    config = copy.deepcopy(GOOD)
    change(config)
    return check_config(config)


def set_weights(*weights):
    def change(config):
        for target, weight in zip(config["upstreams"][0]["targets"], weights, strict=True):
            target["weight"] = weight

    return change


def plugin(config, name):
    (found,) = [p for p in config["plugins"] if p["name"] == name]
    return found


def test_the_rendered_template_breaks_no_rule():
    assert check_config(GOOD) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (set_weights(0, 0), "every target has weight 0"),
        (set_weights(1001, 0), "outside 0..1000"),
        (set_weights(-1, 100), "outside 0..1000"),
        (set_weights("50", 50), "not an integer"),
        (lambda c: c.update(_format_version="2.1"), "_format_version"),
        (lambda c: c.update(_transform=False), "_transform"),
        (lambda c: c["services"][0]["routes"][0]["paths"].append("users"), "must start with"),
        (lambda c: c["services"][0]["routes"][0]["paths"].append("~/(x"), "bad regex"),
        (lambda c: c["services"][0]["routes"][0].update(strip_path=True), "strip_path"),
        (lambda c: c["services"][0]["routes"][0].pop("strip_path"), "strip_path"),
        (lambda c: c["services"][0].update(host="nowhere"), "is not an upstream"),
        (lambda c: c["upstreams"][0]["targets"][0].update(target="edge-v1"), "not host:port"),
        (lambda c: c["plugins"].pop(0), "correlation-id missing"),
        (lambda c: c["plugins"][1]["config"].update(size_unit="megabytes"), "65536"),
        (lambda c: c["plugins"][2]["config"].update(policy="redis"), "policy local"),
        (lambda c: c["plugins"].remove(plugin(c, "prometheus")), "prometheus missing"),
        (lambda c: plugin(c, "prometheus")["config"].pop("latency_metrics"), "latency_metrics"),
        (lambda c: plugin(c, "prometheus")["config"].pop("per_consumer"), "per_consumer"),
        (lambda c: c["services"][1]["routes"][0].update(name="users-read"), "name used twice"),
    ],
)
def test_each_broken_rule_is_reported(change, message):
    problems = broken(change)

    assert any(message in problem for problem in problems), problems


def test_not_a_mapping_is_reported():
    assert check_config(["not", "a", "mapping"]) == ["the file is not a YAML mapping"]
