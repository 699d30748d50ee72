"""Settings over gRPC: typed values, global versus personal, who writes what, effective values."""

from __future__ import annotations

import grpc
import pytest
from aiorch.auth.v1 import settings_pb2, settings_pb2_grpc

from tests.support import Accounts, User, unique

Code = grpc.StatusCode


@pytest.fixture
def settings(auth_channel: grpc.Channel) -> settings_pb2_grpc.SettingsServiceStub:
    return settings_pb2_grpc.SettingsServiceStub(auth_channel)


def create(settings: settings_pb2_grpc.SettingsServiceStub, caller: User, **fields: str) -> settings_pb2.Setting:
    return settings.CreateSetting(settings_pb2.CreateSettingRequest(**fields), metadata=caller.metadata)


def expect(code: Code, call: object) -> None:
    assert callable(call)
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() is code, err.value.details()


@pytest.mark.parametrize(
    ("value_type", "good", "bad"),
    [
        ("integer", "42", "4.2"),
        ("float", "2.5", "two"),
        ("boolean", "true", "yes"),
        ("json", '{"voices": ["a"]}', "{broken"),
    ],
)
def test_values_must_parse_as_their_type(
    value_type: str, good: str, bad: str, settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts
) -> None:
    key = unique("typed")
    expect(
        Code.INVALID_ARGUMENT,
        lambda: create(settings, accounts.admin, key=key, value=bad, value_type=value_type),
    )
    made = create(settings, accounts.admin, key=key, value=good, value_type=value_type)
    assert (made.value, made.value_type, made.user) == (good, value_type, "")
    expect(
        Code.INVALID_ARGUMENT,
        lambda: settings.UpdateSetting(
            settings_pb2.UpdateSettingRequest(id=made.id, value=bad), metadata=accounts.admin.metadata
        ),
    )


def test_unknown_value_type_is_invalid(settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts) -> None:
    expect(
        Code.INVALID_ARGUMENT,
        lambda: create(settings, accounts.admin, key=unique("k"), value="x", value_type="date"),
    )


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_write_global_settings(
    role: str, settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts
) -> None:
    user = accounts.create(role)
    expect(Code.PERMISSION_DENIED, lambda: create(settings, user, key=unique("g"), value="1"))
    made = create(settings, accounts.admin, key=unique("g"), value="1")
    expect(
        Code.PERMISSION_DENIED,
        lambda: settings.UpdateSetting(
            settings_pb2.UpdateSettingRequest(id=made.id, value="2"), metadata=user.metadata
        ),
    )
    expect(
        Code.PERMISSION_DENIED,
        lambda: settings.DeleteSetting(settings_pb2.DeleteSettingRequest(id=made.id), metadata=user.metadata),
    )


def test_viewers_never_write_settings(settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts) -> None:
    viewer = accounts.create("viewer")
    expect(Code.PERMISSION_DENIED, lambda: create(settings, viewer, key=unique("v"), value="1", user="me"))


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_users_write_their_own_settings(
    role: str, settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts
) -> None:
    user = accounts.create(role)
    made = create(settings, user, key=unique("mine"), value="dark", user="me")
    assert made.user == user.id
    changed = settings.UpdateSetting(
        settings_pb2.UpdateSettingRequest(id=made.id, value="light", description="theme"),
        metadata=user.metadata,
    )
    assert (changed.value, changed.description) == ("light", "theme")
    settings.DeleteSetting(settings_pb2.DeleteSettingRequest(id=made.id), metadata=user.metadata)
    expect(
        Code.NOT_FOUND,
        lambda: settings.GetSetting(settings_pb2.GetSettingRequest(id=made.id), metadata=user.metadata),
    )


def test_personal_settings_of_others_are_invisible(
    settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts
) -> None:
    owner, stranger = accounts.create("editor"), accounts.create("editor")
    made = create(settings, owner, key=unique("private"), value="x", user="me")
    expect(
        Code.NOT_FOUND,
        lambda: settings.GetSetting(settings_pb2.GetSettingRequest(id=made.id), metadata=stranger.metadata),
    )
    expect(Code.PERMISSION_DENIED, lambda: create(settings, stranger, key=unique("p"), value="x", user=owner.id))
    listed = settings.ListSettings(settings_pb2.ListSettingsRequest(user=owner.id), metadata=stranger.metadata)
    assert list(listed.settings) == []
    seen_by_admin = settings.GetSetting(settings_pb2.GetSettingRequest(id=made.id), metadata=accounts.admin.metadata)
    assert seen_by_admin.user == owner.id


def test_keys_are_unique_per_user_and_among_global_settings(
    settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts
) -> None:
    key = unique("dup")
    create(settings, accounts.admin, key=key, value="1")
    expect(Code.ALREADY_EXISTS, lambda: create(settings, accounts.admin, key=key, value="2"))
    user = accounts.create("editor")
    create(settings, user, key=key, value="3", user="me")
    expect(Code.ALREADY_EXISTS, lambda: create(settings, user, key=key, value="4", user="me"))


def test_personal_values_override_global_ones(
    settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts
) -> None:
    key, only_global = unique("voice"), unique("rate")
    create(settings, accounts.admin, key=key, value="joe")
    create(settings, accounts.admin, key=only_global, value="150", value_type="integer")
    user = accounts.create("editor")
    create(settings, user, key=key, value="amy", user="me")
    effective = settings.GetEffectiveSettings(settings_pb2.GetEffectiveSettingsRequest(), metadata=user.metadata)
    values = {s.key: (s.value, s.user) for s in effective.settings}
    assert values[key] == ("amy", user.id)
    assert values[only_global] == ("150", "")
    other = accounts.create("viewer")
    effective_other = settings.GetEffectiveSettings(settings_pb2.GetEffectiveSettingsRequest(), metadata=other.metadata)
    assert {s.key: s.value for s in effective_other.settings}[key] == "joe"


def test_filters_user_and_global_only(settings: settings_pb2_grpc.SettingsServiceStub, accounts: Accounts) -> None:
    user = accounts.create("editor")
    mine = create(settings, user, key=unique("f"), value="1", user="me")
    shared = create(settings, accounts.admin, key=unique("f"), value="1")
    global_only = settings.ListSettings(
        settings_pb2.ListSettingsRequest(global_only=True, page_size=500), metadata=user.metadata
    )
    ids = {s.id for s in global_only.settings}
    assert shared.id in ids
    assert mine.id not in ids
    assert all(s.user == "" for s in global_only.settings)
    own = settings.ListSettings(settings_pb2.ListSettingsRequest(user="me"), metadata=user.metadata)
    assert [s.id for s in own.settings] == [mine.id]
