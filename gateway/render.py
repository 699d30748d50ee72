"""Render the Envoy configuration of the gateway from gateway/envoy.yaml.tmpl.

Used by the local stack and by the gateway image's entry point; every value comes from
arguments or AIORCH_GATEWAY_* environment variables, so the same template serves both.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Template
from typing import Any

TEMPLATE = Path(__file__).with_name("envoy.yaml.tmpl")


@dataclass(frozen=True)
class Upstream:
    """A gRPC service behind the gateway: the proto packages it serves and where it listens."""

    name: str
    packages: tuple[str, ...]
    services: tuple[str, ...]
    host: str
    port: int


# The header in which Envoy tells the services the client's address, written over any copy the client
# sent; services/common/peer.py reads it (the same name, kept here because the gateway image carries
# only this package).
CLIENT_ADDRESS_HEADER = "x-aiorch-client-address"

# Every service the gateway fronts, with the gRPC services each one implements.
KNOWN_UPSTREAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "auth": (
        ("aiorch.auth.v1",),
        (
            "aiorch.auth.v1.TokenService",
            "aiorch.auth.v1.ProfileService",
            "aiorch.auth.v1.SettingsService",
            "aiorch.auth.v1.ApiKeyService",
        ),
    ),
    "projects": (("aiorch.projects.v1",), ("aiorch.projects.v1.ProjectService",)),
    "jobs": (
        ("aiorch.jobs.v1",),
        (
            "aiorch.jobs.v1.JobService",
            "aiorch.jobs.v1.FileService",
            "aiorch.jobs.v1.JobResultService",
            "aiorch.jobs.v1.EngineService",
        ),
    ),
}
# The services' default gRPC ports (services/common/config.py).
DEFAULT_PORTS = {"auth": 50051, "projects": 50052, "jobs": 50053}
DEFAULT_EDGE_PORT = 50063  # the jobs service's HTTP edge (services/common/config.py)
# Internal RPCs that services call on each other, never from outside.
INTERNAL_METHODS = ("/aiorch.projects.v1.ProjectService/CheckAccess",)
# Watch streams are reads, so the gateway may open one again when the service answered CANCELLED
# before its first message: under a burst of opening streams (1,200 in `python -m bench --only
# fanout`) the jobs service's gRPC core now and then cancels a new stream within milliseconds,
# before the handler runs. Nothing was sent yet, so a retry is invisible to the client.
RETRIED_WATCH_METHODS = ("/aiorch.jobs.v1.JobService/WatchJob", "/aiorch.jobs.v1.JobService/WatchJobs")
WATCH_RETRIES = 3


@dataclass(frozen=True)
class StaticSite:
    """A folder of built files (the web console, the API docs) served by the gateway under a URL prefix.

    Envoy answers each file itself (a direct response read from the file when the configuration loads), so
    the browser gets the console from the same origin as the API and no file server runs beside Envoy.
    """

    prefix: str
    directory: Path
    index: str = "index.html"


# Envoy refuses direct responses above 4 KiB unless told otherwise; built bundles are larger.
MAX_STATIC_FILE_BYTES = 8 * 1024 * 1024
# Files in an assets/ folder carry a content hash in their names (Vite's build) and never change;
# everything else is revalidated.
IMMUTABLE_DIRS = ("assets",)


def parse_static_sites(value: str) -> list[StaticSite]:
    """`/console=/srv/console,/api/docs=/srv/docs` -> sites; prefixes start with `/` and have no trailing `/`."""
    sites = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        prefix, sep, directory = item.partition("=")
        if not sep or not prefix.startswith("/") or not directory:
            raise ValueError(f"static site {item!r}: expected /prefix=/directory")
        sites.append(StaticSite(prefix=prefix.rstrip("/") or "/", directory=Path(directory)))
    return sites


@dataclass(frozen=True)
class GatewayLimits:
    """What one client, or all of them together, may hold of the gateway."""

    # The largest JSON body the transcoder holds: a TTS text of 100,000 characters, JSON-escaped at
    # up to 6 bytes each, fits with room for the parameters.
    max_json_body_bytes: int = 1024 * 1024
    request_headers_timeout_seconds: float = 10.0
    stream_idle_timeout_seconds: float = 300.0
    # Watch streams stay quiet while nothing changes; they get this much silence instead.
    watch_idle_timeout_seconds: float = 3600.0
    connection_idle_timeout_seconds: float = 300.0
    max_connections: int = 10_000
    max_heap_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class GatewayTls:
    """TLS on the public listener, from a certificate and key on disk (a Secret such as cert-manager writes)."""

    cert_file: Path
    key_file: Path
    # A plain-HTTP listener that only redirects to https (0: none).
    redirect_port: int = 0
    # The port clients reach the TLS listener on (the Service's, not the container's): redirects point there.
    public_port: int = 443
    # Strict-Transport-Security on every answer: browsers then refuse plain HTTP to this host for a year.
    hsts_max_age_seconds: int = 365 * 24 * 3600


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the template needs."""

    gateway_port: int
    admin_port: int
    descriptor_path: Path
    jwks_path: Path
    upstreams: list[Upstream]
    # The jobs service's HTTP edge (host, port): /v1/ and job creates with a form or `Prefer: wait`.
    edge: tuple[str, int] | None = None
    listen_address: str = "0.0.0.0"  # noqa: S104 - the gateway is the one public entry point
    cors_origins: list[str] = field(default_factory=lambda: ["*"])
    jwt_issuer: str = "aiorch"
    jwt_audience: str = "aiorch"
    static_sites: list[StaticSite] = field(default_factory=list)
    limits: GatewayLimits = field(default_factory=GatewayLimits)
    # Proxies in front of Envoy whose X-Forwarded-For hop is believed (0: Envoy's peer is the client).
    trusted_hops: int = 0
    # The listener that serves only /stats/prometheus and /ready from the admin interface; 0 = none.
    stats_port: int = 0
    stats_address: str = "0.0.0.0"  # noqa: S104 - Prometheus and the kubelet reach it on the pod address
    # None: the listener speaks plain HTTP (the local stack, or TLS ended in front of Envoy).
    tls: GatewayTls | None = None


def upstream(name: str, host: str, port: int) -> Upstream:
    """The Upstream of a known service at host:port."""
    packages, services = KNOWN_UPSTREAMS[name]
    return Upstream(name=name, packages=packages, services=services, host=host, port=port)


def _content_type(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith(("javascript", "json")) else kind


GET_ONLY = "{name: ':method', string_match: {exact: GET}}"


def _static_route(path: str, file: Path, cache: str) -> list[str]:
    return [
        f"              - match: {{path: {json.dumps(path)}, headers: [{GET_ONLY}]}}",
        f"                direct_response: {{status: 200, body: {{filename: {json.dumps(str(file.resolve()))}}}}}",
        "                response_headers_to_add:",
        f"                - header: {{key: content-type, value: {json.dumps(_content_type(file))}}}",
        "                  append_action: OVERWRITE_IF_EXISTS_OR_ADD",
        f"                - header: {{key: cache-control, value: {json.dumps(cache)}}}",
        "                  append_action: OVERWRITE_IF_EXISTS_OR_ADD",
        "                - header: {key: x-content-type-options, value: nosniff}",
        "                  append_action: OVERWRITE_IF_EXISTS_OR_ADD",
    ]


def _static_routes(sites: list[StaticSite]) -> list[str]:
    lines: list[str] = []
    for site in sites:
        base = "" if site.prefix == "/" else site.prefix
        for file in sorted(p for p in site.directory.rglob("*") if p.is_file()):
            if file.stat().st_size > MAX_STATIC_FILE_BYTES:
                raise ValueError(f"{file} is larger than the gateway serves ({MAX_STATIC_FILE_BYTES} bytes)")
            relative = file.relative_to(site.directory)
            immutable = any(part in IMMUTABLE_DIRS for part in relative.parts[:-1])
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            lines += _static_route(f"{base}/{relative.as_posix()}", file, cache)
            if relative.name == site.index:
                # A folder answers with its index, with and without the trailing slash.
                folder = "/".join((base, *relative.parts[:-1]))
                lines += _static_route(f"{folder}/", file, cache)
                if folder:
                    lines += _static_route(folder, file, cache)
    return lines


# Routes that carry a raw body of any media type (google.api.HttpBody uploads); every other body is JSON.
RAW_BODY_PATHS = ("/api/files",)
JSON_CONTENT_TYPE = r"(?i)application/json\s*(;.*)?"
BODY_METHODS = "{name: ':method', string_match: {safe_regex: {regex: 'POST|PUT|PATCH'}}}"


# Routes whose bodies stream instead of passing the buffer filter: gRPC and gRPC-web calls (framed
# messages the services bound, uploads among them) and raw-body uploads. The buffer filter reads this on
# the route the request matched before the transcoder rewrote its path, so REST JSON bodies (which match
# none of these) are held, and refused with 413, up to the JSON limit.
UNBUFFERED = [
    "                typed_per_filter_config:",
    "                  envoy.filters.http.buffer:",
    '                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute',
    "                    disabled: true",
]


def _content_type_routes() -> list[str]:
    """Refuse a REST body that does not say it is JSON (the transcoder would read text/plain as JSON).

    These routes match on the REST path, before the transcoder rewrites it, so the refusal turns the
    transcoder off for itself. The raw-body routes come first and only let their uploads past the
    check: after transcoding, every call is routed again by its gRPC path.
    """
    lines: list[str] = []
    for path in RAW_BODY_PATHS:
        lines += [
            f"              - match: {{safe_regex: {{regex: '{re.escape(path)}/?'}}, headers: [{BODY_METHODS}]}}",
            "                route: {cluster: jobs, timeout: 0s}",
            *UNBUFFERED,
        ]
    lines += [
        "              - match:",
        "                  prefix: /api/",
        "                  headers:",
        f"                  - {BODY_METHODS}",
        "                  - {name: content-type, present_match: true}",
        f"                  - {{name: content-type, string_match: {{safe_regex: {{regex: '{JSON_CONTENT_TYPE}'}}}}, "
        "invert_match: true}",
        "                direct_response:",
        "                  {status: 415, body: {inline_string: 'request bodies must be application/json'}}",
        *UNBUFFERED,
        *NOT_TRANSCODED,
    ]
    return lines


EDGE_CLUSTER = "jobs_http"
EDGE_HEALTH_PATH = "/healthz"
MULTIPART = r"(?i)multipart/form-data\s*;.*"
PREFER_WAIT = r"(?i).*\bwait\b.*"
NOT_TRANSCODED = [
    "                  envoy.filters.http.grpc_json_transcoder:",
    '                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig',
    "                    disabled: true",
]


def _edge_routes() -> list[str]:
    """What the jobs service's HTTP edge serves: the OpenAI-compatible API and the creates that wait or carry a
    form. Bodies stream to it unbuffered (it bounds them itself), and the transcoder leaves them alone."""
    create = "safe_regex: {regex: '/api/jobs/?'}"
    post = "{name: ':method', string_match: {exact: POST}}"
    matches = [
        "prefix: /v1/",
        f"{create}, headers: [{post}, {{name: content-type, string_match: {{safe_regex: {{regex: '{MULTIPART}'}}}}}}]",
        f"{create}, headers: [{post}, {{name: prefer, string_match: {{safe_regex: {{regex: '{PREFER_WAIT}'}}}}}}]",
    ]
    lines: list[str] = []
    for match in matches:
        lines += [
            f"              - match: {{{match}}}",
            f"                route: {{cluster: {EDGE_CLUSTER}, timeout: 0s}}",
            *UNBUFFERED,
            *NOT_TRANSCODED,
        ]
    return lines


def _edge_cluster(edge: tuple[str, int] | None) -> str:
    if edge is None:
        return ""
    host, port = edge
    return f"""
  - name: {EDGE_CLUSTER}
    type: STRICT_DNS
    connect_timeout: 2s
{_health_checks(f"http_health_check: {{path: {EDGE_HEALTH_PATH}}}")}
    load_assignment:
      cluster_name: {EDGE_CLUSTER}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{address: {host}, port_value: {port}}}"""


def _routes(upstreams: list[Upstream], sites: list[StaticSite], limits: GatewayLimits, edge: bool = False) -> str:
    lines = _static_routes(sites) + (_edge_routes() if edge else []) + _content_type_routes()
    for method in INTERNAL_METHODS:
        lines += [
            f"              - match: {{path: {method}}}",
            "                direct_response: {status: 404, body: {inline_string: internal method}}",
            *UNBUFFERED,
        ]
    for up in upstreams:
        for package in up.packages:
            for method in RETRIED_WATCH_METHODS:
                if method.startswith(f"/{package}."):
                    lines += [
                        f"              - match: {{path: {method}}}",
                        f"                route: {{cluster: {up.name}, timeout: 0s, "
                        f"idle_timeout: {_seconds(limits.watch_idle_timeout_seconds)}, retry_policy: "
                        f"{{retry_on: cancelled, num_retries: {WATCH_RETRIES}}}}}",
                        *UNBUFFERED,
                    ]
            # Transcoded REST calls are routed after their path became the gRPC method path.
            lines += [
                f"              - match: {{prefix: /{package}.}}",
                f"                route: {{cluster: {up.name}, timeout: 0s}}",
                *UNBUFFERED,
            ]
    return "\n".join(lines)


# Active gRPC health checks of each service pod. A stopping service answers NOT_SERVING for its
# AIORCH_DRAIN_DELAY_SECONDS before it refuses calls; Envoy must have taken it out by then, which takes
# at most UNHEALTHY_THRESHOLD checks (the first may start a whole interval late), each up to its timeout.
HEALTH_CHECK_INTERVAL_SECONDS = 2.0
HEALTH_CHECK_TIMEOUT_SECONDS = 1.0
UNHEALTHY_THRESHOLD = 2


def unhealthy_within_seconds() -> float:
    """The longest a pod that turned NOT_SERVING still gets new calls from Envoy."""
    return UNHEALTHY_THRESHOLD * HEALTH_CHECK_INTERVAL_SECONDS + HEALTH_CHECK_TIMEOUT_SECONDS


def _health_checks(check: str) -> str:
    """A cluster's active health checks, the same cadence for every upstream; `check` says how to ask."""
    return f"""    health_checks:
    - timeout: {_seconds(HEALTH_CHECK_TIMEOUT_SECONDS)}
      interval: {_seconds(HEALTH_CHECK_INTERVAL_SECONDS)}
      no_traffic_interval: 2s
      unhealthy_threshold: {UNHEALTHY_THRESHOLD}
      healthy_threshold: 1
      {check}"""


def _clusters(upstreams: list[Upstream]) -> str:
    blocks = []
    for up in upstreams:
        blocks.append(
            f"""  - name: {up.name}
    type: STRICT_DNS
    connect_timeout: 2s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {{}}
    # Retries in flight scale with the requests in flight (the default allows 3 per cluster, so
    # a burst of cancelled watch opens overflowed it); a retry budget still bounds them.
    circuit_breakers:
      thresholds:
      - retry_budget: {{budget_percent: {{value: 20.0}}, min_retry_concurrency: 10}}
{_health_checks("grpc_health_check: {}")}
    load_assignment:
      cluster_name: {up.name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{address: {up.host}, port_value: {up.port}}}"""
        )
    return "\n".join(blocks)


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _stats_listener(config: GatewayConfig) -> str:
    """A listener that passes only GET /stats/prometheus and GET /ready on to the loopback admin port."""
    if not config.stats_port:
        return ""
    routes = "\n".join(
        f"""              - match: {{path: {path}, headers: [{GET_ONLY}]}}
                route: {{cluster: envoy_admin, timeout: 5s}}"""
        for path in ("/stats/prometheus", "/ready")
    )
    return f"""  - name: stats
    address:
      socket_address: {{address: {config.stats_address}, port_value: {config.stats_port}}}
    # Monitoring must still see a gateway that is at its connection limit.
    ignore_global_conn_limit: true
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: stats
          request_headers_timeout: {_seconds(config.limits.request_headers_timeout_seconds)}
          route_config:
            name: stats
            virtual_hosts:
            - name: stats
              domains: ["*"]
              routes:
{routes}
              - match: {{prefix: /}}
                direct_response: {{status: 404, body: {{inline_string: "only GET /stats/prometheus and /ready"}}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


def _transport_socket(tls: GatewayTls | None) -> str:
    """The public filter chain's TLS settings (ALPN h2 first, so gRPC clients get HTTP/2), or nothing."""
    if tls is None:
        return ""
    return f"""      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_params: {{tls_minimum_protocol_version: TLSv1_2}}
            tls_certificates:
            - certificate_chain: {{filename: {json.dumps(str(tls.cert_file))}}}
              private_key: {{filename: {json.dumps(str(tls.key_file))}}}
"""


def _response_headers(tls: GatewayTls | None) -> str:
    """HSTS on every answer once the listener speaks TLS, as the first filter: Envoy's own replies (a refused
    token, a 413) pass back through it too, which a route's response_headers_to_add would miss."""
    if tls is None:
        return ""
    return f"""          - name: envoy.filters.http.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
              mutations:
                response_mutations:
                - append:
                    header:
                      key: strict-transport-security
                      value: "max-age={tls.hsts_max_age_seconds}; includeSubDomains"
                    append_action: OVERWRITE_IF_EXISTS_OR_ADD
"""


def _redirect_listener(config: GatewayConfig) -> str:
    """A plain-HTTP listener that answers every request with a permanent redirect to the TLS listener."""
    tls = config.tls
    if tls is None or not tls.redirect_port:
        return ""
    # Envoy leaves the default port out of the Location header, so 443 gives https://host/path.
    return f"""  - name: http_redirect
    address:
      socket_address: {{address: {config.listen_address}, port_value: {tls.redirect_port}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http_redirect
          request_headers_timeout: {_seconds(config.limits.request_headers_timeout_seconds)}
          route_config:
            name: http_redirect
            virtual_hosts:
            - name: http_redirect
              domains: ["*"]
              routes:
              - match: {{prefix: /}}
                redirect: {{https_redirect: true, port_redirect: {tls.public_port}, response_code: PERMANENT_REDIRECT}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


def _admin_cluster(config: GatewayConfig) -> str:
    if not config.stats_port:
        return ""
    return f"""
  - name: envoy_admin
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: envoy_admin
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{address: 127.0.0.1, port_value: {config.admin_port}}}"""


def render(config: GatewayConfig) -> str:
    """The Envoy YAML for `config`."""
    origins = [{"exact": o} if o != "*" else {"safe_regex": {"regex": ".*"}} for o in config.cors_origins]
    services = [s for up in config.upstreams for s in up.services]
    limits = config.limits
    return Template(TEMPLATE.read_text()).substitute(
        admin_port=config.admin_port,
        listen_address=config.listen_address,
        gateway_port=config.gateway_port,
        cors_origins=json.dumps(origins),
        jwt_issuer=json.dumps(config.jwt_issuer),
        jwt_audience=json.dumps(config.jwt_audience),
        jwks_path=json.dumps(str(config.jwks_path)),
        descriptor_path=json.dumps(str(config.descriptor_path)),
        services=json.dumps(services),
        routes=_routes(config.upstreams, config.static_sites, limits, config.edge is not None),
        max_static_file_bytes=MAX_STATIC_FILE_BYTES,
        clusters=_clusters(config.upstreams) + _edge_cluster(config.edge) + _admin_cluster(config),
        stats_listener=_stats_listener(config) + _redirect_listener(config),
        transport_socket=_transport_socket(config.tls),
        response_headers=_response_headers(config.tls),
        client_address_header=CLIENT_ADDRESS_HEADER,
        trusted_hops=config.trusted_hops,
        max_json_body_bytes=limits.max_json_body_bytes,
        request_headers_timeout=_seconds(limits.request_headers_timeout_seconds),
        stream_idle_timeout=_seconds(limits.stream_idle_timeout_seconds),
        connection_idle_timeout=_seconds(limits.connection_idle_timeout_seconds),
        max_connections=limits.max_connections,
        max_heap_bytes=limits.max_heap_bytes,
    )


def limits_from_env(env: Mapping[str, str]) -> GatewayLimits:
    """GatewayLimits from AIORCH_GATEWAY_* variables; unset ones keep their defaults."""
    default = GatewayLimits()
    values: dict[str, Any] = {}
    for name, value in vars(default).items():
        text = env.get(f"AIORCH_GATEWAY_{name.upper()}")
        if text is not None:
            values[name] = type(value)(text)
    return replace(default, **values)


def tls_from_env(env: Mapping[str, str]) -> GatewayTls | None:
    """GatewayTls from AIORCH_GATEWAY_TLS_* variables; None (plain HTTP) unless a certificate file is set."""
    cert = env.get("AIORCH_GATEWAY_TLS_CERT_FILE", "")
    if not cert:
        return None
    default = GatewayTls(Path(cert), Path())
    return GatewayTls(
        cert_file=Path(cert),
        key_file=Path(env.get("AIORCH_GATEWAY_TLS_KEY_FILE", str(Path(cert).with_name("tls.key")))),
        redirect_port=int(env.get("AIORCH_GATEWAY_HTTP_REDIRECT_PORT", "0")),
        public_port=int(env.get("AIORCH_GATEWAY_HTTPS_PUBLIC_PORT", str(default.public_port))),
        hsts_max_age_seconds=int(env.get("AIORCH_GATEWAY_HSTS_MAX_AGE_SECONDS", str(default.hsts_max_age_seconds))),
    )


def config_from_env(env: Mapping[str, str]) -> GatewayConfig:
    """The GatewayConfig that AIORCH_GATEWAY_* (and AIORCH_JWT_*) variables describe."""
    ups = [
        upstream(
            name,
            env.get(f"AIORCH_GATEWAY_{name.upper()}_HOST", name),
            int(env.get(f"AIORCH_GATEWAY_{name.upper()}_PORT", str(DEFAULT_PORTS[name]))),
        )
        for name in KNOWN_UPSTREAMS
    ]
    return GatewayConfig(
        gateway_port=int(env.get("AIORCH_GATEWAY_PORT", "8080")),
        admin_port=int(env.get("AIORCH_GATEWAY_ADMIN_PORT", "9901")),
        descriptor_path=Path(env.get("AIORCH_GATEWAY_DESCRIPTOR", "/etc/aiorch/descriptor.pb")),
        jwks_path=Path(env.get("AIORCH_GATEWAY_JWKS", "/etc/aiorch/keys/jwks.json")),
        upstreams=ups,
        edge=(
            env.get("AIORCH_GATEWAY_JOBS_HTTP_HOST", "jobs"),
            int(env.get("AIORCH_GATEWAY_JOBS_HTTP_PORT", str(DEFAULT_EDGE_PORT))),
        ),
        cors_origins=[o.strip() for o in env.get("AIORCH_GATEWAY_CORS_ORIGINS", "*").split(",") if o.strip()],
        jwt_issuer=env.get("AIORCH_JWT_ISSUER", "aiorch"),
        jwt_audience=env.get("AIORCH_JWT_AUDIENCE", "aiorch"),
        static_sites=parse_static_sites(env.get("AIORCH_GATEWAY_STATIC_SITES", "")),
        limits=limits_from_env(env),
        trusted_hops=int(env.get("AIORCH_GATEWAY_TRUSTED_HOPS", "0")),
        stats_port=int(env.get("AIORCH_GATEWAY_STATS_PORT", "0")),
        tls=tls_from_env(env),
    )


def main() -> None:
    """Render from AIORCH_GATEWAY_* variables (the gateway image's entry point)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(render(config_from_env(os.environ)))


if __name__ == "__main__":
    main()
