"""Composition root of the auth service: settings in, a runnable ServiceApp out."""

from __future__ import annotations

import functools
from datetime import timedelta

from aiorch.auth.v1 import profiles_pb2_grpc, settings_pb2_grpc, tokens_pb2_grpc

from services.auth.handlers import ProfileServicer, SettingsServicer, TokenServicer
from services.auth.keys import load_signing_key
from services.auth.models import OUTBOX
from services.auth.passwords import Passwords
from services.auth.profiles import ProfileDirectory
from services.auth.settings_store import SettingsStore
from services.auth.throttle import LoginThrottle, ThrottlePolicy
from services.auth.tokens import TokenIssuer, TokenLifetimes
from services.common import messaging
from services.common.config import AuthSettings
from services.common.db import Database, make_engine
from services.common.identity import TokenVerifier, load_public_keys
from services.common.outbox import OutboxRelay
from services.common.peer import parse_networks
from services.common.revocations import RevocationView
from services.common.server import ServiceApp, Servicer

TOKEN_SERVICE = "aiorch.auth.v1.TokenService"  # noqa: S105 - a service name, not a secret
PUBLIC_METHODS = frozenset(
    f"/{TOKEN_SERVICE}/{name}" for name in ("ObtainToken", "RefreshToken", "VerifyToken", "RevokeToken", "GetJwks")
)


def passwords_from(settings: AuthSettings) -> Passwords:
    """The password hasher with the configured argon2id cost."""
    return Passwords(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)


Settings = AuthSettings


async def build_app(settings: AuthSettings) -> ServiceApp:
    """Wire the auth service's domain objects, servicers and the relay that announces revocations."""
    db = Database(make_engine(settings.database_url, settings.db_pool_size))
    nc = await messaging.connect(
        settings.nats_url, "auth", settings.nats_user, settings.nats_password.get_secret_value()
    )
    js = nc.jetstream()
    # Each service creates what it writes; it may create nothing else (services/common/nats_permissions.py).
    await messaging.ensure_topology(js, settings.nats_replicas, owner="auth")
    relay = OutboxRelay(db, OUTBOX, js, settings.outbox_poll_seconds)
    revocations = RevocationView()
    key = load_signing_key(settings.jwt_private_key_file)
    previous = load_public_keys(settings.jwt_public_key_file, settings.jwt_previous_public_key_files)[1:]
    verifier = TokenVerifier([key.public, *previous], settings.jwt_issuer, settings.jwt_audience)
    passwords = passwords_from(settings)
    throttle = LoginThrottle(
        ThrottlePolicy(
            window=timedelta(seconds=settings.login_failure_window_seconds),
            max_per_pair=settings.login_max_failures_per_user,
            max_per_address=settings.login_max_failures_per_address,
            account_window=timedelta(seconds=settings.login_account_window_seconds),
            max_addresses_per_account=settings.login_max_addresses_per_account,
        )
    )
    issuer = TokenIssuer(
        db,
        key,
        previous,
        verifier,
        passwords,
        throttle,
        TokenLifetimes(
            access=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh=timedelta(seconds=settings.refresh_token_ttl_seconds),
        ),
        settings.jwt_issuer,
        settings.jwt_audience,
        on_revoked=relay.wake,
    )

    async def close() -> None:
        # close, not drain: drain raises while the connection is reconnecting (NATS down at shutdown).
        await nc.close()
        db.dispose()

    return ServiceApp(
        name="auth",
        servicers=[
            Servicer(
                TOKEN_SERVICE,
                TokenServicer(issuer, parse_networks(settings.trusted_proxies)),
                tokens_pb2_grpc.add_TokenServiceServicer_to_server,
            ),
            Servicer(
                "aiorch.auth.v1.ProfileService",
                ProfileServicer(ProfileDirectory(db, passwords, relay.wake)),
                profiles_pb2_grpc.add_ProfileServiceServicer_to_server,
            ),
            Servicer(
                "aiorch.auth.v1.SettingsService",
                SettingsServicer(SettingsStore(db)),
                settings_pb2_grpc.add_SettingsServiceServicer_to_server,
            ),
        ],
        revocations=revocations,
        public_methods=PUBLIC_METHODS,
        background=[functools.partial(revocations.run, js), relay.run],
        on_shutdown=[close],
    )
