"""The rendered gateway: watch retries within a budget, body buffering, the admin interface, the client address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.render import (
    CLIENT_ADDRESS_HEADER,
    KNOWN_UPSTREAMS,
    RETRIED_WATCH_METHODS,
    GatewayConfig,
    GatewayLimits,
    limits_from_env,
    render,
    upstream,
)
from services.common import peer


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


def _filters(config: dict[str, Any]) -> list[str]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return [f["name"] for f in manager["http_filters"]]


def test_bodies_are_buffered_only_after_the_token_check_and_before_the_transcoder() -> None:
    names = _filters(_config())
    assert names.index("envoy.filters.http.jwt_authn") < names.index("envoy.filters.http.buffer")
    assert names.index("envoy.filters.http.buffer") < names.index("envoy.filters.http.grpc_json_transcoder")


def test_grpc_and_upload_routes_stream_and_rest_json_has_no_unbuffered_route() -> None:
    for route in _routes(_config()):
        unbuffered = "envoy.filters.http.buffer" in route.get("typed_per_filter_config", {})
        match = route["match"]
        if str(match.get("prefix", "")).startswith("/aiorch.") or str(match.get("path", "")).startswith("/aiorch."):
            assert unbuffered, match
        if "route" in route and match.get("prefix", "").startswith("/api"):
            raise AssertionError(f"a REST prefix is routed before transcoding: {match}")


def test_the_admin_interface_binds_loopback_and_the_stats_listener_passes_two_paths() -> None:
    upstreams = [upstream(name, name, 50051 + i) for i, name in enumerate(KNOWN_UPSTREAMS)]
    config = GatewayConfig(8080, 9901, Path("/d.pb"), Path("/jwks.json"), upstreams, stats_port=9902)
    loaded = yaml.safe_load(render(config))
    assert loaded["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    stats = next(listener for listener in loaded["static_resources"]["listeners"] if listener["name"] == "stats")
    manager = stats["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    forwarded = [r["match"]["path"] for r in routes if "route" in r]
    assert forwarded == ["/stats/prometheus", "/ready"]
    assert routes[-1]["direct_response"]["status"] == 404
    # Without a stats port there is no second listener at all.
    assert [listener["name"] for listener in _config()["static_resources"]["listeners"]] == ["gateway"]


def test_the_client_address_header_is_the_one_the_services_read() -> None:
    assert CLIENT_ADDRESS_HEADER == peer.CLIENT_ADDRESS_HEADER
    route_config = _config()["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    (added,) = route_config["route_config"]["request_headers_to_add"]
    assert added["header"]["key"] == CLIENT_ADDRESS_HEADER
    assert added["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD"


def test_limits_come_from_gateway_variables() -> None:
    limits = limits_from_env(
        {"AIORCH_GATEWAY_MAX_JSON_BODY_BYTES": "2048", "AIORCH_GATEWAY_STREAM_IDLE_TIMEOUT_SECONDS": "7.5"}
    )
    assert limits.max_json_body_bytes == 2048
    assert limits.stream_idle_timeout_seconds == 7.5
    assert limits.max_connections == GatewayLimits().max_connections
