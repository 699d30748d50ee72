"""Render the Envoy configuration of the gateway from gateway/envoy.yaml.tmpl.

Used by the local stack and by the gateway image's entry point; every value comes from
arguments or AIORCH_GATEWAY_* environment variables, so the same template serves both.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("envoy.yaml.tmpl")


@dataclass(frozen=True)
class Upstream:
    """A gRPC service behind the gateway: the proto packages it serves and where it listens."""

    name: str
    packages: tuple[str, ...]
    services: tuple[str, ...]
    host: str
    port: int


# Every service the gateway fronts, with the gRPC services each one implements.
KNOWN_UPSTREAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "auth": (
        ("aiorch.auth.v1",),
        ("aiorch.auth.v1.TokenService", "aiorch.auth.v1.ProfileService", "aiorch.auth.v1.SettingsService"),
    ),
    "projects": (("aiorch.projects.v1",), ("aiorch.projects.v1.ProjectService",)),
    "jobs": (
        ("aiorch.jobs.v1",),
        ("aiorch.jobs.v1.JobService", "aiorch.jobs.v1.FileService", "aiorch.jobs.v1.JobResultService"),
    ),
}
# The services' default gRPC ports (services/common/config.py).
DEFAULT_PORTS = {"auth": 50051, "projects": 50052, "jobs": 50053}
# Internal RPCs that services call on each other, never from outside.
INTERNAL_METHODS = ("/aiorch.projects.v1.ProjectService/CheckAccess",)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the template needs."""

    gateway_port: int
    admin_port: int
    descriptor_path: Path
    jwks_path: Path
    upstreams: list[Upstream]
    listen_address: str = "0.0.0.0"  # noqa: S104 - the gateway is the one public entry point
    admin_address: str = "127.0.0.1"
    cors_origins: list[str] = field(default_factory=lambda: ["*"])
    jwt_issuer: str = "aiorch"
    jwt_audience: str = "aiorch"


def upstream(name: str, host: str, port: int) -> Upstream:
    """The Upstream of a known service at host:port."""
    packages, services = KNOWN_UPSTREAMS[name]
    return Upstream(name=name, packages=packages, services=services, host=host, port=port)


def _routes(upstreams: list[Upstream]) -> str:
    lines = []
    for method in INTERNAL_METHODS:
        lines += [
            f"              - match: {{path: {method}}}",
            "                direct_response: {status: 404, body: {inline_string: internal method}}",
        ]
    for up in upstreams:
        for package in up.packages:
            # Transcoded REST calls are routed after their path became the gRPC method path.
            lines += [
                f"              - match: {{prefix: /{package}.}}",
                f"                route: {{cluster: {up.name}, timeout: 0s}}",
            ]
    return "\n".join(lines)


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
    health_checks:
    - timeout: 1s
      interval: 5s
      no_traffic_interval: 2s
      unhealthy_threshold: 3
      healthy_threshold: 1
      grpc_health_check: {{}}
    load_assignment:
      cluster_name: {up.name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{address: {up.host}, port_value: {up.port}}}"""
        )
    return "\n".join(blocks)


def render(config: GatewayConfig) -> str:
    """The Envoy YAML for `config`."""
    origins = [{"exact": o} if o != "*" else {"safe_regex": {"regex": ".*"}} for o in config.cors_origins]
    services = [s for up in config.upstreams for s in up.services]
    return Template(TEMPLATE.read_text()).substitute(
        admin_address=config.admin_address,
        admin_port=config.admin_port,
        listen_address=config.listen_address,
        gateway_port=config.gateway_port,
        cors_origins=json.dumps(origins),
        jwt_issuer=json.dumps(config.jwt_issuer),
        jwt_audience=json.dumps(config.jwt_audience),
        jwks_path=json.dumps(str(config.jwks_path)),
        descriptor_path=json.dumps(str(config.descriptor_path)),
        services=json.dumps(services),
        routes=_routes(config.upstreams),
        clusters=_clusters(config.upstreams),
    )


def main() -> None:
    """Render from AIORCH_GATEWAY_* variables (the gateway image's entry point)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    env = os.environ
    ups = [
        upstream(
            name,
            env.get(f"AIORCH_GATEWAY_{name.upper()}_HOST", name),
            int(env.get(f"AIORCH_GATEWAY_{name.upper()}_PORT", str(DEFAULT_PORTS[name]))),
        )
        for name in KNOWN_UPSTREAMS
    ]
    config = GatewayConfig(
        gateway_port=int(env.get("AIORCH_GATEWAY_PORT", "8080")),
        admin_port=int(env.get("AIORCH_GATEWAY_ADMIN_PORT", "9901")),
        # In a pod the admin port serves Prometheus and the readiness probe, so it binds wider there.
        admin_address=env.get("AIORCH_GATEWAY_ADMIN_ADDRESS", "127.0.0.1"),
        descriptor_path=Path(env.get("AIORCH_GATEWAY_DESCRIPTOR", "/etc/aiorch/descriptor.pb")),
        jwks_path=Path(env.get("AIORCH_GATEWAY_JWKS", "/etc/aiorch/keys/jwks.json")),
        upstreams=ups,
        cors_origins=[o.strip() for o in env.get("AIORCH_GATEWAY_CORS_ORIGINS", "*").split(",") if o.strip()],
        jwt_issuer=env.get("AIORCH_JWT_ISSUER", "aiorch"),
        jwt_audience=env.get("AIORCH_JWT_AUDIENCE", "aiorch"),
    )
    args.out.write_text(render(config))


if __name__ == "__main__":
    main()
