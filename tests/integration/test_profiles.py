"""Users ("profiles") over gRPC: the role matrix, own versus other, and input checks."""

from __future__ import annotations

import grpc
import jwt
import pytest
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc, tokens_pb2

from tests.support import Accounts, unique

Code = grpc.StatusCode


@pytest.fixture
def profiles(auth_channel: grpc.Channel) -> profiles_pb2_grpc.ProfileServiceStub:
    return profiles_pb2_grpc.ProfileServiceStub(auth_channel)


def create_request(role: str = "viewer", **overrides: str) -> profiles_pb2.CreateProfileRequest:
    fields = {"username": unique("new"), "role": role, "password": "long enough password", **overrides}
    return profiles_pb2.CreateProfileRequest(**fields)


def expect(code: Code, call: object) -> grpc.RpcError:
    assert callable(call)
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() is code, err.value.details()
    return err.value


def test_admin_creates_a_user_who_can_log_in(
    profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    request = create_request("editor", email="ed@example.com", name="Ed")
    created = profiles.CreateProfile(request, metadata=accounts.admin.metadata)
    assert (created.username, created.role, created.email, created.name, created.active) == (
        request.username,
        "editor",
        "ed@example.com",
        "Ed",
        True,
    )
    assert accounts.login(request.username, request.password).access


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_create_users(
    role: str, profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    caller = accounts.create(role)
    expect(Code.PERMISSION_DENIED, lambda: profiles.CreateProfile(create_request(), metadata=caller.metadata))


def test_there_is_no_signup_without_a_token(profiles: profiles_pb2_grpc.ProfileServiceStub) -> None:
    expect(Code.UNAUTHENTICATED, lambda: profiles.CreateProfile(create_request()))


def test_a_taken_username_already_exists(profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts) -> None:
    request = create_request()
    profiles.CreateProfile(request, metadata=accounts.admin.metadata)
    expect(Code.ALREADY_EXISTS, lambda: profiles.CreateProfile(request, metadata=accounts.admin.metadata))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("role", "root", "role must be one of"),
        ("password", "short", "at least 8"),
        ("username", "a b", "username must be"),
        ("email", "not-an-address", "not a valid address"),
    ],
)
def test_bad_fields_are_invalid_arguments(
    field: str, value: str, message: str, profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    err = expect(
        Code.INVALID_ARGUMENT,
        lambda: profiles.CreateProfile(create_request(**{field: value}), metadata=accounts.admin.metadata),
    )
    assert message in (err.details() or "")


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_users_read_themselves_but_not_others(
    role: str, profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    user, other = accounts.create(role), accounts.create("viewer")
    assert profiles.GetProfile(profiles_pb2.GetProfileRequest(id="me"), metadata=user.metadata).id == user.id
    assert profiles.GetProfile(profiles_pb2.GetProfileRequest(id=user.id), metadata=user.metadata).id == user.id
    expect(
        Code.NOT_FOUND,
        lambda: profiles.GetProfile(profiles_pb2.GetProfileRequest(id=other.id), metadata=user.metadata),
    )


def test_admins_read_anyone(profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts) -> None:
    other = accounts.create("viewer")
    got = profiles.GetProfile(profiles_pb2.GetProfileRequest(id=other.id), metadata=accounts.admin.metadata)
    assert got.username == other.username


def test_unknown_and_malformed_ids_are_not_found(
    profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    for bad in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        expect(
            Code.NOT_FOUND,
            lambda bad=bad: profiles.GetProfile(
                profiles_pb2.GetProfileRequest(id=bad), metadata=accounts.admin.metadata
            ),
        )


def test_non_admins_list_only_themselves(profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts) -> None:
    viewer = accounts.create("viewer")
    listed = profiles.ListProfiles(profiles_pb2.ListProfilesRequest(), metadata=viewer.metadata)
    assert [p.id for p in listed.profiles] == [viewer.id]


def test_admins_page_through_everyone(profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts) -> None:
    for _ in range(3):
        accounts.create("viewer")
    seen: list[str] = []
    token = ""
    while True:
        page = profiles.ListProfiles(
            profiles_pb2.ListProfilesRequest(page_size=2, page_token=token, role="viewer"),
            metadata=accounts.admin.metadata,
        )
        assert len(page.profiles) <= 2
        seen += [p.username for p in page.profiles]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)


def test_search_matches_name_and_treats_wildcards_literally(
    profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    user = accounts.create("viewer")
    found = profiles.ListProfiles(
        profiles_pb2.ListProfilesRequest(search=user.username[-10:]), metadata=accounts.admin.metadata
    )
    assert [p.id for p in found.profiles] == [user.id]
    wildcard = profiles.ListProfiles(
        profiles_pb2.ListProfilesRequest(search="%' OR 1=1 --"), metadata=accounts.admin.metadata
    )
    assert list(wildcard.profiles) == []


def test_users_change_their_own_name_only(profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts) -> None:
    user = accounts.create("editor")
    updated = profiles.UpdateProfile(
        profiles_pb2.UpdateProfileRequest(id="me", name="New Name"), metadata=user.metadata
    )
    assert updated.name == "New Name"
    assert updated.role == "editor"
    expect(
        Code.PERMISSION_DENIED,
        lambda: profiles.UpdateProfile(
            profiles_pb2.UpdateProfileRequest(id="me", role="admin"), metadata=user.metadata
        ),
    )
    other = accounts.create("viewer")
    expect(
        Code.NOT_FOUND,
        lambda: profiles.UpdateProfile(
            profiles_pb2.UpdateProfileRequest(id=other.id, name="x"), metadata=user.metadata
        ),
    )


def test_admins_set_roles_and_the_next_token_carries_it(
    profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    user = accounts.create("viewer")
    updated = profiles.UpdateProfile(
        profiles_pb2.UpdateProfileRequest(id=user.id, role="editor"), metadata=accounts.admin.metadata
    )
    assert updated.role == "editor"
    assert (
        jwt.decode(accounts.login(user.username, user.password).access, options={"verify_signature": False})["role"]
        == "editor"
    )


def test_admins_cannot_lock_themselves_out(profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts) -> None:
    admin = accounts.create("admin")
    expect(
        Code.FAILED_PRECONDITION,
        lambda: profiles.DeleteProfile(profiles_pb2.DeleteProfileRequest(id=admin.id), metadata=admin.metadata),
    )
    expect(
        Code.FAILED_PRECONDITION,
        lambda: profiles.UpdateProfile(
            profiles_pb2.UpdateProfileRequest(id="me", role="viewer"), metadata=admin.metadata
        ),
    )


def test_only_admins_deactivate(profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts) -> None:
    editor, victim = accounts.create("editor"), accounts.create("viewer")
    expect(
        Code.NOT_FOUND,
        lambda: profiles.DeleteProfile(profiles_pb2.DeleteProfileRequest(id=victim.id), metadata=editor.metadata),
    )
    profiles.DeleteProfile(profiles_pb2.DeleteProfileRequest(id=victim.id), metadata=accounts.admin.metadata)
    got = profiles.GetProfile(profiles_pb2.GetProfileRequest(id=victim.id), metadata=accounts.admin.metadata)
    assert got.active is False


def test_users_change_their_password_with_the_old_one(
    profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    user = accounts.create("viewer")
    expect(
        Code.PERMISSION_DENIED,
        lambda: profiles.SetPassword(
            profiles_pb2.SetPasswordRequest(id="me", old_password="wrong one", new_password="brand new secret"),
            metadata=user.metadata,
        ),
    )
    profiles.SetPassword(
        profiles_pb2.SetPasswordRequest(id="me", old_password=user.password, new_password="brand new secret"),
        metadata=user.metadata,
    )
    assert accounts.login(user.username, "brand new secret").access
    expect(Code.UNAUTHENTICATED, lambda: accounts.login(user.username, user.password))
    # Sessions from before the change end with it.
    expect(
        Code.UNAUTHENTICATED,
        lambda: accounts.tokens.RefreshToken(tokens_pb2.RefreshTokenRequest(refresh=user.refresh)),
    )


def test_admins_set_anyones_password_without_the_old_one(
    profiles: profiles_pb2_grpc.ProfileServiceStub, accounts: Accounts
) -> None:
    user = accounts.create("editor")
    profiles.SetPassword(
        profiles_pb2.SetPasswordRequest(id=user.id, new_password="set by the admin"),
        metadata=accounts.admin.metadata,
    )
    assert accounts.login(user.username, "set by the admin").access
