"""gRPC servicers of the auth service: read the request, call one domain function, map the result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiorch.auth.v1 import (
    keys_pb2,
    keys_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    settings_pb2,
    settings_pb2_grpc,
    tokens_pb2,
    tokens_pb2_grpc,
)
from grpc import aio

from services.auth.api_key_store import ApiKeyStore, ApiKeyView, NewApiKey
from services.auth.profiles import NewProfile, ProfileChanges, ProfileDirectory, ProfileView
from services.auth.settings_store import NewSetting, SettingChanges, SettingsStore, SettingView
from services.auth.tokens import TokenIssuer, TokenPair
from services.common.interceptors import current_caller
from services.common.outbox import OutboxMessage
from services.common.peer import Network, client_address
from services.common.timestamps import from_timestamp, to_timestamp

Context = aio.ServicerContext[Any, Any]


def _pair(pair: TokenPair) -> tokens_pb2.TokenPair:
    return tokens_pb2.TokenPair(access=pair.access, refresh=pair.refresh)


def profile_message(view: ProfileView) -> profiles_pb2.Profile:
    """The Profile message of a domain view."""
    return profiles_pb2.Profile(
        id=str(view.id),
        username=view.username,
        email=view.email,
        name=view.name,
        role=view.role.value,
        active=view.active,
        created_at=to_timestamp(view.created_at),
        updated_at=to_timestamp(view.updated_at),
    )


def setting_message(view: SettingView) -> settings_pb2.Setting:
    """The Setting message of a domain view."""
    return settings_pb2.Setting(
        id=str(view.id),
        key=view.key,
        value=view.value,
        value_type=view.value_type.value,
        user=str(view.user_id) if view.user_id else "",
        description=view.description,
        created_at=to_timestamp(view.created_at),
        updated_at=to_timestamp(view.updated_at),
    )


def api_key_message(view: ApiKeyView) -> keys_pb2.ApiKey:
    """The ApiKey message of a domain view."""
    return keys_pb2.ApiKey(
        id=view.id,
        name=view.name,
        prefix=view.prefix,
        user_id=str(view.user_id),
        role=view.role.value,
        project_id=str(view.project_id or ""),
        created_at=to_timestamp(view.created_at),
        expires_at=to_timestamp(view.expires_at),
        last_used_at=to_timestamp(view.last_used_at),
        revoked_at=to_timestamp(view.revoked_at),
        active=view.active,
    )


def _optional(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


class TokenServicer(tokens_pb2_grpc.TokenServiceServicer):
    """Logins and tokens."""

    def __init__(self, issuer: TokenIssuer, trusted_proxies: list[Network]) -> None:
        self._issuer = issuer
        self._trusted = trusted_proxies

    async def ObtainToken(self, request: tokens_pb2.ObtainTokenRequest, context: Context) -> tokens_pb2.TokenPair:
        address = client_address(context.peer(), context.invocation_metadata() or (), self._trusted)
        return _pair(await asyncio.to_thread(self._issuer.obtain, request.username, request.password, address))

    async def RefreshToken(self, request: tokens_pb2.RefreshTokenRequest, context: Context) -> tokens_pb2.TokenPair:
        return _pair(await asyncio.to_thread(self._issuer.refresh, request.refresh))

    async def VerifyToken(
        self, request: tokens_pb2.VerifyTokenRequest, context: Context
    ) -> tokens_pb2.VerifyTokenResponse:
        await asyncio.to_thread(self._issuer.verify, request.token)
        return tokens_pb2.VerifyTokenResponse()

    async def RevokeToken(
        self, request: tokens_pb2.RevokeTokenRequest, context: Context
    ) -> tokens_pb2.RevokeTokenResponse:
        await asyncio.to_thread(self._issuer.revoke, request.refresh)
        return tokens_pb2.RevokeTokenResponse()

    async def GetJwks(self, request: tokens_pb2.GetJwksRequest, context: Context) -> tokens_pb2.Jwks:
        return tokens_pb2.Jwks(keys=[tokens_pb2.Jwk(**key) for key in self._issuer.jwks()])


class ProfileServicer(profiles_pb2_grpc.ProfileServiceServicer):
    """Users."""

    def __init__(self, directory: ProfileDirectory) -> None:
        self._directory = directory

    async def CreateProfile(self, request: profiles_pb2.CreateProfileRequest, context: Context) -> profiles_pb2.Profile:
        new = NewProfile(
            username=request.username,
            role=request.role,
            password=request.password,
            email=request.email,
            name=request.name,
        )
        return profile_message(await asyncio.to_thread(self._directory.create, current_caller(), new))

    async def GetProfile(self, request: profiles_pb2.GetProfileRequest, context: Context) -> profiles_pb2.Profile:
        return profile_message(await asyncio.to_thread(self._directory.get, current_caller(), request.id))

    async def ListProfiles(
        self, request: profiles_pb2.ListProfilesRequest, context: Context
    ) -> profiles_pb2.ListProfilesResponse:
        page = await asyncio.to_thread(
            self._directory.list_profiles,
            current_caller(),
            request.page_size,
            request.page_token,
            request.role,
            request.search,
        )
        return profiles_pb2.ListProfilesResponse(
            profiles=[profile_message(p) for p in page.profiles], next_page_token=page.next_page_token
        )

    async def UpdateProfile(self, request: profiles_pb2.UpdateProfileRequest, context: Context) -> profiles_pb2.Profile:
        changes = ProfileChanges(
            email=_optional(request, "email"),
            name=_optional(request, "name"),
            role=_optional(request, "role"),
            active=_optional(request, "active"),
        )
        return profile_message(await asyncio.to_thread(self._directory.update, current_caller(), request.id, changes))

    async def DeleteProfile(
        self, request: profiles_pb2.DeleteProfileRequest, context: Context
    ) -> profiles_pb2.DeleteProfileResponse:
        await asyncio.to_thread(self._directory.deactivate, current_caller(), request.id)
        return profiles_pb2.DeleteProfileResponse()

    async def SetPassword(
        self, request: profiles_pb2.SetPasswordRequest, context: Context
    ) -> profiles_pb2.SetPasswordResponse:
        await asyncio.to_thread(
            self._directory.set_password,
            current_caller(),
            request.id,
            request.old_password,
            request.new_password,
        )
        return profiles_pb2.SetPasswordResponse()


class SettingsServicer(settings_pb2_grpc.SettingsServiceServicer):
    """Platform settings."""

    def __init__(self, store: SettingsStore) -> None:
        self._store = store

    async def CreateSetting(self, request: settings_pb2.CreateSettingRequest, context: Context) -> settings_pb2.Setting:
        new = NewSetting(
            key=request.key,
            value=request.value,
            value_type=request.value_type,
            user=request.user,
            description=request.description,
        )
        return setting_message(await asyncio.to_thread(self._store.create, current_caller(), new))

    async def GetSetting(self, request: settings_pb2.GetSettingRequest, context: Context) -> settings_pb2.Setting:
        return setting_message(await asyncio.to_thread(self._store.get, current_caller(), request.id))

    async def ListSettings(
        self, request: settings_pb2.ListSettingsRequest, context: Context
    ) -> settings_pb2.ListSettingsResponse:
        page = await asyncio.to_thread(
            self._store.list_settings,
            current_caller(),
            request.page_size,
            request.page_token,
            request.user,
            request.global_only,
            request.key,
        )
        return settings_pb2.ListSettingsResponse(
            settings=[setting_message(s) for s in page.settings], next_page_token=page.next_page_token
        )

    async def UpdateSetting(self, request: settings_pb2.UpdateSettingRequest, context: Context) -> settings_pb2.Setting:
        changes = SettingChanges(
            value=_optional(request, "value"),
            value_type=_optional(request, "value_type"),
            description=_optional(request, "description"),
        )
        return setting_message(await asyncio.to_thread(self._store.update, current_caller(), request.id, changes))

    async def DeleteSetting(
        self, request: settings_pb2.DeleteSettingRequest, context: Context
    ) -> settings_pb2.DeleteSettingResponse:
        await asyncio.to_thread(self._store.delete, current_caller(), request.id)
        return settings_pb2.DeleteSettingResponse()

    async def GetEffectiveSettings(
        self, request: settings_pb2.GetEffectiveSettingsRequest, context: Context
    ) -> settings_pb2.GetEffectiveSettingsResponse:
        views = await asyncio.to_thread(self._store.effective, current_caller())
        return settings_pb2.GetEffectiveSettingsResponse(settings=[setting_message(v) for v in views])


class ApiKeyServicer(keys_pb2_grpc.ApiKeyServiceServicer):
    """API keys."""

    def __init__(self, store: ApiKeyStore, publish: Callable[[int, OutboxMessage], Awaitable[None]]) -> None:
        self._store = store
        # Publishes a committed outbox row and waits (OutboxRelay.hand_off_and_wait).
        self._publish = publish

    async def CreateApiKey(
        self, request: keys_pb2.CreateApiKeyRequest, context: Context
    ) -> keys_pb2.CreateApiKeyResponse:
        new = NewApiKey(
            name=request.name,
            role=request.role,
            project_id=request.project_id,
            expires_at=from_timestamp(request.expires_at, "expires_at") if request.HasField("expires_at") else None,
            user_id=request.user_id,
        )
        created = await asyncio.to_thread(self._store.create, current_caller(), new)
        # Every service has the key before its secret is shown, so the first call with it succeeds.
        await self._publish(created.announcement.row_id, created.announcement.message)
        return keys_pb2.CreateApiKeyResponse(key=api_key_message(created.view), secret=created.secret)

    async def ListApiKeys(self, request: keys_pb2.ListApiKeysRequest, context: Context) -> keys_pb2.ListApiKeysResponse:
        page = await asyncio.to_thread(
            self._store.list_keys,
            current_caller(),
            request.page_size,
            request.page_token,
            request.user_id,
            request.include_revoked,
        )
        return keys_pb2.ListApiKeysResponse(
            keys=[api_key_message(k) for k in page.keys], next_page_token=page.next_page_token
        )

    async def RevokeApiKey(
        self, request: keys_pb2.RevokeApiKeyRequest, context: Context
    ) -> keys_pb2.RevokeApiKeyResponse:
        await asyncio.to_thread(self._store.revoke, current_caller(), request.id)
        return keys_pb2.RevokeApiKeyResponse()
