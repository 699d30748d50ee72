"""The rendered gateway: watch streams are opened again when the service cancelled them unanswered, within a budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.render import KNOWN_UPSTREAMS, RETRIED_WATCH_METHODS, GatewayConfig, render, upstream


def _config() -> dict[str, Any]:
    upstreams = [upstream(name, name, 50051 + i) for i, name in enumerate(KNOWN_UPSTREAMS)]
    text = render(GatewayConfig(8080, 9901, Path("/d.pb"), Path("/jwks.json"), upstreams))
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes: list[dict[str, Any]] = manager["route_config"]["virtual_hosts"][0]["routes"]
    return routes


def test_watch_methods_are_retried_on_cancelled_and_matched_before_their_package() -> None:
    routes = _routes(_config())
    paths = [route["match"].get("path") for route in routes]
    for method in RETRIED_WATCH_METHODS:
        route = routes[paths.index(method)]
        assert route["route"]["cluster"] == "jobs"
        assert route["route"]["retry_policy"]["retry_on"] == "cancelled"
        assert route["route"]["retry_policy"]["num_retries"] >= 1
        package_route = next(i for i, r in enumerate(routes) if method.startswith(str(r["match"].get("prefix", "\0"))))
        assert paths.index(method) < package_route


def test_other_calls_are_never_retried() -> None:
    routes = _routes(_config())
    retried = [route["match"].get("path") for route in routes if "retry_policy" in route.get("route", {})]
    assert sorted(retried) == sorted(RETRIED_WATCH_METHODS)


def test_every_cluster_bounds_its_retries_by_a_budget() -> None:
    for cluster in _config()["static_resources"]["clusters"]:
        thresholds = cluster["circuit_breakers"]["thresholds"][0]
        assert 0 < thresholds["retry_budget"]["budget_percent"]["value"] <= 25
