"""Composition root of the auth service: settings in, a runnable ServiceApp out."""

from __future__ import annotations

import functools
from datetime import timedelta

from aiorch.auth.v1 import keys_pb2_grpc, profiles_pb2_grpc, settings_pb2_grpc, tokens_pb2_grpc

from services.auth.api_key_store import ApiKeyStore
from services.auth.handlers import ApiKeyServicer, ProfileServicer, SettingsServicer, TokenServicer
from services.auth.key_use import record_key_uses
from services.auth.keys import load_signing_key
from services.auth.models import OUTBOX
from services.auth.passwords import Passwords
from services.auth.profiles import ProfileDirectory
from services.auth.settings_store import SettingsStore
from services.auth.throttle import LoginThrottle, ThrottlePolicy
from services.auth.tokens import TokenIssuer, TokenLifetimes
from services.common.bootstrap import ServiceCore
from services.common.config import AuthSettings
from services.common.identity import TokenVerifier, load_public_keys
from services.common.peer import parse_networks
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
    core = await ServiceCore.start("auth", settings, OUTBOX)
    db, relay = core.db, core.relay
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

    keys = ApiKeyStore(db, relay.wake)

    return core.app(
        [
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
            Servicer(
                "aiorch.auth.v1.ApiKeyService",
                ApiKeyServicer(keys, relay.hand_off_and_wait),
                keys_pb2_grpc.add_ApiKeyServiceServicer_to_server,
            ),
        ],
        public_methods=PUBLIC_METHODS,
        background=[functools.partial(record_key_uses, core.nc, keys)],
    )
