"""Typed configuration from environment variables. docs/configuration.md lists every one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service process reads (prefix `AIORCH_`, except the two URLs)."""

    model_config = SettingsConfigDict(env_prefix="AIORCH_", extra="ignore")

    database_url: str = Field(
        default="postgresql+psycopg2://aiorch@127.0.0.1:5432/aiorch",
        validation_alias=AliasChoices("DATABASE_URL", "AIORCH_DATABASE_URL"),
        description="SQLAlchemy URL of the PostgreSQL server.",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "AIORCH_NATS_URL"),
        description="NATS server URL(s), comma separated.",
    )
    grpc_host: str = Field(default="0.0.0.0", description="Address the gRPC server binds.")  # noqa: S104
    grpc_port: int = Field(default=50051, description="Port of the gRPC server.")
    metrics_port: int = Field(default=9464, description="Port of the Prometheus /metrics endpoint; 0 = off.")
    log_level: str = Field(default="INFO", description="Lowest level logged.")
    log_format: Literal["json", "console"] = Field(default="json", description="Log renderer.")
    shutdown_grace_seconds: float = Field(
        default=20.0, description="On SIGTERM, how long in-flight calls may finish before they are cut."
    )
    drain_delay_seconds: float = Field(
        default=5.0,
        description="On SIGTERM, how long to answer NOT_SERVING before refusing calls.",
    )
    jwt_public_key_file: Path = Field(
        default=Path("/etc/aiorch/keys/jwt-public.pem"),
        description="PEM public key that verifies access tokens.",
    )
    jwt_issuer: str = Field(default="aiorch", description="`iss` claim of tokens.")
    jwt_audience: str = Field(default="aiorch", description="`aud` claim of tokens.")
    db_pool_size: int = Field(default=10, description="Database connections kept per process.")


class AuthSettings(ServiceSettings):
    """Settings of the auth service."""

    jwt_private_key_file: Path = Field(
        default=Path("/etc/aiorch/keys/jwt-private.pem"),
        description="PEM Ed25519 private key that signs tokens.",
    )
    access_token_ttl_seconds: int = Field(default=900, ge=1, description="Access token lifetime.")
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1, description="Refresh token lifetime.")
    login_failure_window_seconds: int = Field(
        default=300, ge=1, description="Window in which failed logins are counted."
    )
    login_max_failures_per_user: int = Field(
        default=5, ge=1, description="Failed logins for one username within the window before throttling."
    )
    login_max_failures_per_address: int = Field(
        default=20, ge=1, description="Failed logins from one client address within the window."
    )
    argon2_time_cost: int = Field(default=3, ge=1, description="argon2id passes.")
    argon2_memory_kib: int = Field(default=65536, ge=8, description="argon2id memory in KiB.")
    argon2_parallelism: int = Field(default=4, ge=1, description="argon2id lanes.")
    trusted_proxies: str = Field(
        default="127.0.0.1/32,::1/128",
        description="CIDRs whose X-Forwarded-For is believed when throttling by client address.",
    )
