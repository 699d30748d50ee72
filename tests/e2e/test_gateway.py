"""Through Envoy: REST/JSON with the replaced system's paths, native gRPC, gRPC-web and CORS."""

from __future__ import annotations

import struct

import grpc
import httpx
import pytest
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc, tokens_pb2, tokens_pb2_grpc

from services.devstack.stack import Endpoints
from tests.security.token_forgeries import ATTACKS
from tests.support import Accounts, User, gateway_client_from, own_loopback, unique


def login(http: httpx.Client, username: str, password: str, path: str = "/api/token/") -> httpx.Response:
    return http.post(path, json={"username": username, "password": password})


@pytest.mark.parametrize("path", ["/api/token/", "/api/token"])
def test_login_answers_a_token_pair_with_and_without_the_trailing_slash(
    path: str, http: httpx.Client, accounts: Accounts
) -> None:
    reply = login(http, "admin", accounts.admin_password, path)
    assert reply.status_code == 200
    assert set(reply.json()) == {"access", "refresh"}


def test_refresh_rotates_and_a_reused_token_is_401(http: httpx.Client, accounts: Accounts) -> None:
    user = accounts.create("viewer")
    rotated = http.post("/api/token/refresh/", json={"refresh": user.refresh})
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != user.refresh
    reused = http.post("/api/token/refresh/", json={"refresh": user.refresh})
    assert reused.status_code == 401
    assert reused.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]


def test_verify_answers_empty_200_or_401(http: httpx.Client, accounts: Accounts) -> None:
    user = accounts.create("viewer")
    good = http.post("/api/token/verify/", json={"token": user.access})
    assert (good.status_code, good.json()) == (200, {})
    assert http.post("/api/token/verify/", json={"token": "x.y.z"}).status_code == 401


def test_wrong_password_is_401_with_a_json_error(stack: Endpoints) -> None:
    with gateway_client_from(stack.gateway_url, own_loopback()) as client:
        reply = login(client, unique("nobody"), "not the password")
    assert reply.status_code == 401
    body = reply.json()
    assert body["code"] == 16
    assert "credentials" in body["message"]


def test_throttled_login_is_429_with_retry_after(stack: Endpoints, accounts: Accounts) -> None:
    user = accounts.create("viewer")
    with gateway_client_from(stack.gateway_url, own_loopback()) as client:
        for _ in range(5):
            assert login(client, user.username, "wrong password").status_code == 401
        locked = login(client, user.username, user.password)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert locked.json()["details"][0]["@type"].endswith("google.rpc.RetryInfo")


def test_logout_ends_the_session(http: httpx.Client, accounts: Accounts) -> None:
    user = accounts.create("editor")
    assert http.post("/api/logout/", json={"refresh": user.refresh}).status_code == 200
    assert http.post("/api/token/refresh/", json={"refresh": user.refresh}).status_code == 401


def test_calls_without_a_token_are_401(http: httpx.Client) -> None:
    assert http.get("/api/profiles/").status_code == 401
    assert http.get("/api/settings/").status_code == 401


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_forged_tokens_are_401_through_the_gateway(
    attack: object, http: httpx.Client, stack: Endpoints, accounts: Accounts
) -> None:
    assert callable(attack)
    token = attack(stack, accounts)
    reply = http.get("/api/profiles/", headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 401
    assert reply.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]


def test_profiles_crud_follows_the_role_matrix(http: httpx.Client, accounts: Accounts) -> None:
    admin, editor = accounts.admin, accounts.create("editor")
    new = {
        "username": unique("rest"),
        "password": "rest password",
        "role": "viewer",
        "email": "r@example.com",
    }
    assert http.post("/api/profiles/", json=new, headers=editor.headers).status_code == 403
    created = http.post("/api/profiles/", json=new, headers=admin.headers)
    assert created.status_code == 200
    profile = created.json()
    assert profile["role"] == "viewer"
    assert "password" not in profile and "password_hash" not in profile
    assert http.post("/api/profiles/", json=new, headers=admin.headers).status_code == 409
    assert (
        http.post(
            "/api/profiles/", json={**new, "username": unique("r"), "role": "boss"}, headers=admin.headers
        ).status_code
        == 400
    )
    assert http.get(f"/api/profiles/{profile['id']}/", headers=editor.headers).status_code == 404
    patched = http.patch(f"/api/profiles/{profile['id']}/", json={"name": "Renamed"}, headers=admin.headers)
    assert patched.json()["name"] == "Renamed"
    assert patched.json()["email"] == "r@example.com"
    assert http.delete(f"/api/profiles/{profile['id']}/", headers=admin.headers).status_code == 200
    assert login(http, new["username"], new["password"]).status_code == 401


def test_users_edit_their_own_name_and_password(http: httpx.Client, accounts: Accounts) -> None:
    user = accounts.create("viewer")
    assert http.patch("/api/profiles/me/", json={"name": "Me"}, headers=user.headers).json()["name"] == "Me"
    assert http.patch("/api/profiles/me/", json={"role": "admin"}, headers=user.headers).status_code == 403
    changed = http.post(
        "/api/profiles/me/set_password/",
        json={"old_password": user.password, "new_password": "another good one"},
        headers=user.headers,
    )
    assert changed.status_code == 200
    assert login(http, user.username, "another good one").status_code == 200


def test_profile_list_pages_follow_aip_158(http: httpx.Client, accounts: Accounts) -> None:
    for _ in range(2):
        accounts.create("editor")
    first = http.get("/api/profiles/", params={"page_size": 1, "role": "editor"}, headers=accounts.admin.headers).json()
    assert len(first["profiles"]) == 1
    second = http.get(
        "/api/profiles/",
        params={"page_size": 1, "role": "editor", "page_token": first["next_page_token"]},
        headers=accounts.admin.headers,
    ).json()
    assert second["profiles"][0]["id"] != first["profiles"][0]["id"]
    mismatched = http.get(
        "/api/profiles/",
        params={"page_size": 1, "role": "viewer", "page_token": first["next_page_token"]},
        headers=accounts.admin.headers,
    )
    assert mismatched.status_code == 400


def test_settings_rest_paths_and_filters(http: httpx.Client, accounts: Accounts) -> None:
    admin, user = accounts.admin, accounts.create("editor")
    key = unique("rest-setting")
    bad = http.post("/api/settings/", json={"key": key, "value": "x", "value_type": "integer"}, headers=admin.headers)
    assert bad.status_code == 400
    assert "not an integer" in bad.json()["message"]
    made = http.post("/api/settings/", json={"key": key, "value": "7", "value_type": "integer"}, headers=admin.headers)
    assert made.status_code == 200
    assert made.json()["user"] == ""
    assert http.post("/api/settings/", json={"key": key, "value": "8"}, headers=admin.headers).status_code == 409
    assert http.post("/api/settings/", json={"key": key, "value": "8"}, headers=user.headers).status_code == 403
    mine = http.post(
        "/api/settings/",
        json={"key": key, "value": "9", "value_type": "integer", "user": "me"},
        headers=user.headers,
    )
    assert mine.status_code == 200
    effective = http.get("/api/settings/effective/", headers=user.headers).json()["settings"]
    assert {s["key"]: s["value"] for s in effective}[key] == "9"
    global_only = http.get("/api/settings/", params={"global_only": "true", "key": key}, headers=user.headers).json()
    assert [s["value"] for s in global_only["settings"]] == ["7"]
    by_user = http.get("/api/settings/", params={"user": user.id}, headers=admin.headers).json()
    assert [s["id"] for s in by_user["settings"]] == [mine.json()["id"]]
    assert http.get(f"/api/settings/{made.json()['id']}/", headers=user.headers).json()["value"] == "7"
    assert http.delete(f"/api/settings/{mine.json()['id']}/", headers=user.headers).status_code == 200


def test_malformed_json_is_400(http: httpx.Client) -> None:
    reply = http.post("/api/token/", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_unknown_paths_are_404(http: httpx.Client) -> None:
    reply = http.get("/api/nothing-here/")
    assert reply.status_code == 404
    assert reply.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_native_grpc_through_the_gateway(gateway_channel: grpc.Channel, accounts: Accounts) -> None:
    stub = tokens_pb2_grpc.TokenServiceStub(gateway_channel)
    pair = stub.ObtainToken(tokens_pb2.ObtainTokenRequest(username="admin", password=accounts.admin_password))
    stub.VerifyToken(tokens_pb2.VerifyTokenRequest(token=pair.access))
    with pytest.raises(grpc.RpcError) as err:
        stub.VerifyToken(tokens_pb2.VerifyTokenRequest(token="x"))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_native_grpc_with_a_forged_token_is_unauthenticated_at_the_gateway(
    gateway_channel: grpc.Channel, stack: Endpoints, accounts: Accounts
) -> None:
    stub = profiles_pb2_grpc.ProfileServiceStub(gateway_channel)
    forged = ATTACKS[0](stack, accounts)
    with pytest.raises(grpc.RpcError) as err:
        stub.ListProfiles(profiles_pb2.ListProfilesRequest(), metadata=(("authorization", f"Bearer {forged}"),))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


def _grpc_web_frames(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    messages, trailers, offset = [], {}, 0
    while offset < len(body):
        flag, length = struct.unpack(">BI", body[offset : offset + 5])
        payload = body[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if flag & 0x80:
            for line in payload.decode().strip().split("\r\n"):
                name, _, value = line.partition(":")
                trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


def test_grpc_web_call_from_a_browser_origin(http: httpx.Client, accounts: Accounts) -> None:
    user: User = accounts.create("viewer")
    request = profiles_pb2.GetProfileRequest(id="me").SerializeToString()
    reply = http.post(
        "/aiorch.auth.v1.ProfileService/GetProfile",
        content=struct.pack(">BI", 0, len(request)) + request,
        headers={
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "origin": "http://console.example",
            **user.headers,
        },
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "http://console.example"
    messages, trailers = _grpc_web_frames(reply.content)
    assert trailers["grpc-status"] == "0"
    assert profiles_pb2.Profile.FromString(messages[0]).username == user.username


def test_cors_preflight_allows_the_grpc_web_headers(http: httpx.Client) -> None:
    reply = http.options(
        "/aiorch.auth.v1.TokenService/ObtainToken",
        headers={
            "origin": "http://console.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,authorization",
        },
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "http://console.example"
    assert "x-grpc-web" in reply.headers["access-control-allow-headers"]


def test_jwks_is_public(http: httpx.Client) -> None:
    keys = http.get("/api/token/jwks/").json()["keys"]
    assert keys[0]["kty"] == "OKP"
    assert keys[0]["alg"] == "EdDSA"
