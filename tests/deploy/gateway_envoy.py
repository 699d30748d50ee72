"""The prod overlay's gateway, rendered and run locally: its Envoy with a test certificate and free ports."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway import render as gateway_render
from services.auth.keys import generate_key_pair, public_jwk
from services.common.identity import load_public_key
from services.devstack.probes import envoy_ready
from services.devstack.stack import free_port
from services.devstack.supervisor import wait_until
from tests.deploy.manifests import ROOT, Container, gateway_containers, render

ENVOY = Path(sys.executable).parent / "envoy"
DESCRIPTOR = ROOT / "gen" / "descriptor.pb"


@dataclass(frozen=True)
class TestCertificate:
    """A CA and a certificate it signed for localhost and 127.0.0.1, as PEM files."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_certificate(folder: Path) -> TestCertificate:
    """A fresh CA and server certificate (ECDSA P-256), valid for a day."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiorch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TestCertificate(folder / "ca.crt", folder / "tls.crt", folder / "tls.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


def prod_gateway_env() -> dict[str, str]:
    """The literal environment the prod overlay gives the container that renders the gateway's configuration."""
    docs = render("overlays/prod")
    renderer = gateway_containers(docs)[1]
    return {name: str(var["value"]) for name, var in renderer.env(docs).items() if "value" in var}


def prod_gateway_container() -> Container:
    """The gateway (Envoy) container of the prod overlay."""
    return gateway_containers(render("overlays/prod"))[0]


@dataclass
class RunningGateway:
    """An Envoy started from the prod gateway's configuration, on loopback ports of its own."""

    config: gateway_render.GatewayConfig
    certificate: TestCertificate
    process: subprocess.Popen[bytes]
    log: Path
    extra_args: list[str] = field(default_factory=list)

    @property
    def https_port(self) -> int:
        return self.config.gateway_port

    @property
    def http_port(self) -> int:
        assert self.config.tls is not None
        return self.config.tls.redirect_port

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def prod_config_on_free_ports(folder: Path) -> tuple[gateway_render.GatewayConfig, TestCertificate]:
    """The prod gateway's GatewayConfig, its files in `folder` and its ports free loopback ones."""
    certificate = make_certificate(folder)
    generate_key_pair(folder / "jwt.pem", folder / "jwt.pub")
    (folder / "jwks.json").write_text(json.dumps({"keys": [public_jwk(load_public_key(folder / "jwt.pub"))]}))
    site = folder / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>aiorch</title>")
    env = {
        **prod_gateway_env(),
        "AIORCH_GATEWAY_DESCRIPTOR": str(DESCRIPTOR),
        "AIORCH_GATEWAY_JWKS": str(folder / "jwks.json"),
        "AIORCH_GATEWAY_TLS_CERT_FILE": str(certificate.cert_file),
        "AIORCH_GATEWAY_TLS_KEY_FILE": str(certificate.key_file),
        "AIORCH_GATEWAY_STATIC_SITES": f"/={site}",
    }
    config = gateway_render.config_from_env(env)
    assert config.tls is not None, "prod serves TLS"
    https, http, admin, stats = (free_port() for _ in range(4))
    # The redirect points at the TLS listener's port, here a free one instead of 443.
    tls = replace(config.tls, redirect_port=http, public_port=https)
    config = replace(
        config,
        gateway_port=https,
        admin_port=admin,
        stats_port=stats,
        listen_address="127.0.0.1",
        stats_address="127.0.0.1",
        tls=tls,
    )
    return config, certificate


def start_gateway(folder: Path, extra_args: list[str]) -> RunningGateway:
    """Render the prod gateway into `folder` and start its Envoy; return once it is ready."""
    config, certificate = prod_config_on_free_ports(folder)
    config_file = folder / "envoy.yaml"
    config_file.write_text(gateway_render.render(config))
    log = folder / "envoy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ENVOY), "-c", str(config_file), "--disable-hot-restart", "--log-level", "warning", *extra_args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    running = RunningGateway(config, certificate, process, log, extra_args)
    try:
        wait_until(lambda: envoy_ready(config.admin_port), 30, "the gateway's Envoy")
    except TimeoutError:
        running.stop()
        raise AssertionError(log.read_text()) from None
    return running


def connection_refused(port: int) -> bool:
    """Whether nothing accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True
