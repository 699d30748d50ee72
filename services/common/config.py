"""Typed configuration from environment variables. docs/configuration.md lists every one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common import job_types
from services.common.messaging import REVOCATIONS_MAX_AGE_SECONDS


class ProcessSettings(BaseSettings):
    """Settings every aiorch process reads (prefix `AIORCH_`, except NATS_URL)."""

    model_config = SettingsConfigDict(env_prefix="AIORCH_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "AIORCH_NATS_URL"),
        description="NATS server URL(s), comma separated.",
    )
    nats_user: str = Field(
        default="",
        description="NATS user of this component (auth, projects, jobs, workers, admin); empty = anonymous.",
    )
    nats_password: SecretStr = Field(default=SecretStr(""), description="Password of the NATS user.")
    nats_replicas: int = Field(
        default=1, ge=1, le=5, description="Replicas of every JetStream stream and bucket (3 on a 3-node cluster)."
    )
    metrics_port: int = Field(default=9464, description="Port of the Prometheus /metrics endpoint; 0 = off.")
    log_level: str = Field(default="INFO", description="Lowest level logged.")
    log_format: Literal["json", "console"] = Field(default="json", description="Log renderer.")
    shutdown_grace_seconds: float = Field(
        default=20.0, description="On SIGTERM, how long in-flight work may finish before it is cut."
    )


class ServiceSettings(ProcessSettings):
    """Settings every gRPC service reads."""

    database_url: str = Field(
        default="postgresql+psycopg2://aiorch@127.0.0.1:5432/aiorch",
        validation_alias=AliasChoices("DATABASE_URL", "AIORCH_DATABASE_URL"),
        description="SQLAlchemy URL of the PostgreSQL server.",
    )
    grpc_host: str = Field(default="0.0.0.0", description="Address the gRPC server binds.")  # noqa: S104
    grpc_port: int = Field(default=50051, description="Port of the gRPC server.")
    drain_delay_seconds: float = Field(
        default=5.0,
        description="On SIGTERM, how long to answer NOT_SERVING before refusing calls.",
    )
    jwt_public_key_file: Path = Field(
        default=Path("/etc/aiorch/keys/jwt-public.pem"),
        description="PEM public key that verifies access tokens.",
    )
    jwt_previous_public_key_files: str = Field(
        default="",
        description="Comma-separated PEM public keys of earlier signing keys, still accepted during a rotation.",
    )
    jwt_issuer: str = Field(default="aiorch", description="`iss` claim of tokens.")
    jwt_audience: str = Field(default="aiorch", description="`aud` claim of tokens.")
    db_pool_size: int = Field(default=10, description="Database connections kept per process.")
    schema_wait_seconds: float = Field(
        default=600,
        ge=0,
        description="How long a service waits at start for its schema to reach this release's migrations, then exits.",
    )
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the outbox relay looks for rows a commit's hand-off missed."
    )


class BlobStoreSettings(BaseSettings):
    """Where inputs and results are stored (the jobs service and the workers share it)."""

    model_config = SettingsConfigDict(env_prefix="AIORCH_", extra="ignore")

    blob_backend: Literal["local", "s3"] = Field(default="local", description="`local` directory or `s3`.")
    blob_dir: Path = Field(
        default=Path("/var/lib/aiorch/blobs"), description="Root directory of the local backend (a shared volume)."
    )
    s3_bucket: str = Field(default="aiorch", description="Bucket of the s3 backend.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint; unset = AWS.")
    s3_region: str | None = Field(default=None, description="S3 region.")
    s3_access_key: str | None = Field(default=None, description="S3 access key; unset = the AWS default chain.")
    s3_secret_key: str | None = Field(default=None, description="S3 secret key.")


class AuthSettings(ServiceSettings):
    """Settings of the auth service."""

    jwt_private_key_file: Path = Field(
        default=Path("/etc/aiorch/keys/jwt-private.pem"),
        description="PEM Ed25519 private key that signs tokens.",
    )
    access_token_ttl_seconds: int = Field(
        default=900,
        ge=1,
        # A revocation must outlive the tokens it revokes.
        le=REVOCATIONS_MAX_AGE_SECONDS,
        description="Access token lifetime (at most a day, how long revocations are kept).",
    )
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1, description="Refresh token lifetime.")
    login_failure_window_seconds: int = Field(
        default=300, ge=1, description="Window in which failed logins are counted."
    )
    login_max_failures_per_user: int = Field(
        default=5,
        ge=1,
        description="Failed logins for one username from one client address within the window before that "
        "address waits (others do not).",
    )
    login_max_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="Failed logins from one client address (any usernames) within the window before it waits.",
    )
    login_max_addresses_per_account: int = Field(
        default=20,
        ge=1,
        description="Distinct client addresses failing on one username within the account window before the "
        "username is locked for everyone (a distributed guess).",
    )
    login_account_window_seconds: int = Field(
        default=3600, ge=1, description="Window in which the addresses failing on one username are counted."
    )
    argon2_time_cost: int = Field(default=3, ge=1, description="argon2id passes.")
    argon2_memory_kib: int = Field(default=65536, ge=8, description="argon2id memory in KiB.")
    argon2_parallelism: int = Field(default=4, ge=1, description="argon2id lanes.")
    trusted_proxies: str = Field(
        default="127.0.0.1/32,::1/128",
        description="CIDRs the gateway connects from: only their x-aiorch-client-address header is believed.",
    )


class ProjectsSettings(ServiceSettings):
    """Settings of the projects service."""

    grpc_port: int = Field(default=50052, description="Port of the gRPC server.")


class JobsSettings(ServiceSettings, BlobStoreSettings):
    """Settings of the jobs service."""

    model_config = SettingsConfigDict(env_prefix="AIORCH_", extra="ignore")

    grpc_port: int = Field(default=50053, description="Port of the gRPC server.")
    http_port: int = Field(
        default=50063,
        description="Port of the HTTP edge: the OpenAI-compatible API (/v1/) and job creates with a form or "
        "`Prefer: wait` (the gateway routes them here).",
    )
    sync_call_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long an OpenAI-compatible call waits for its job; a job still running then is cancelled.",
    )
    prefer_wait_max_seconds: float = Field(
        default=60.0, gt=0, description="The longest `Prefer: wait` a job create may ask for (a longer one is cut)."
    )
    projects_address: str = Field(default="projects:50052", description="host:port of the projects service.")
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Largest input file accepted; checked while streaming."
    )
    watch_queue_size: int = Field(
        default=256, ge=1, description="Updates buffered per watcher; a watcher that falls further behind is ended."
    )
    watch_write_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long one watch-stream write may wait for a client that does not read."
    )
    watch_access_recheck_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long an open watch stream trusts an access decision without an announcement of a change "
        "(the projects service announces every change; this covers a lost announcement).",
    )
    reaper_interval_seconds: float = Field(
        default=15.0, gt=0, description="How often the reaper looks for RUNNING jobs past their worker's deadline."
    )
    reaper_grace_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long past its time limit a RUNNING job may stay silent before it is failed as abandoned.",
    )


class WorkerSettings(ProcessSettings, BlobStoreSettings):
    """Settings of a worker process."""

    model_config = SettingsConfigDict(env_prefix="AIORCH_", extra="ignore")

    worker_types: str = Field(default=",".join(job_types.NAMES), description="Job types to take (default all).")
    worker_concurrency: int = Field(default=1, ge=1, description="Jobs run at once per type.")
    worker_ack_wait_seconds: float = Field(
        default=30.0, gt=0, description="A job not heartbeated for this long is redelivered to another worker."
    )
    worker_max_deliver: int = Field(default=3, ge=1, description="Deliveries of one job before it is FAILED.")
    worker_time_limit_seconds: float = Field(default=900.0, gt=0, description="Default run-time limit of one attempt.")
    worker_time_limits: str = Field(default="", description="Per-type limits, e.g. `TTS=120,DUBBING=3600`.")
    worker_input_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Largest input fetched from input_url."
    )
    worker_input_timeout_seconds: float = Field(default=60.0, gt=0, description="Time limit of an input_url download.")
    worker_input_allow_networks: str = Field(
        default="", description="CIDRs that input_url may reach although private or loopback (tests, intranets)."
    )
    worker_input_max_pixels: int = Field(
        default=40_000_000, ge=1, description="Largest input image (width x height), read from its header."
    )
    worker_input_max_seconds: float = Field(
        default=4 * 3600.0, gt=0, description="Longest audio or video input, read from its container header."
    )
    worker_input_max_seconds_by_type: str = Field(
        default="", description="Per-type input duration limits, e.g. `VOICE_CLONING=600,STT=7200`."
    )
    worker_engine_memory_mib: float = Field(
        default=3072.0, gt=0, description="Memory ceiling of one engine process (resident MiB, with its ffmpeg)."
    )
    worker_engine_memory_mib_by_type: str = Field(
        default="", description="Per-type engine memory ceilings in MiB, e.g. `STT=2048,AI_STORIES=4096`."
    )
    worker_engines: str = Field(
        default="", description="Engines replacing the CPU ones, e.g. `STT=mycompany.engines:GpuWhisper`."
    )
    worker_id: str = Field(default="", description="Name in job records; default host name and process id.")
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - scraped from inside the cluster
        description="Address the worker's /metrics endpoint binds (the local stack uses 127.0.0.1).",
    )
