"""A logged-in gRPC session with one server: the stubs, the bearer token, and transparent refresh."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from functools import cached_property
from typing import TypeVar

import grpc
from aiorch.auth.v1 import keys_pb2_grpc, profiles_pb2_grpc, tokens_pb2, tokens_pb2_grpc
from aiorch.jobs.v1 import engines_pb2_grpc, files_pb2_grpc, jobs_pb2_grpc, results_pb2_grpc
from aiorch.projects.v1 import projects_pb2_grpc

from services.cli.client.credentials import Credentials, CredentialStore
from services.cli.client.errors import NotLoggedIn

Request = TypeVar("Request")
Response = TypeVar("Response")

# Unary calls are quick; a dead server should not hang a script.
CALL_TIMEOUT_SECONDS = 30.0
# Refresh a little before the access token expires, so a call never races the expiry.
EXPIRY_MARGIN_SECONDS = 30


def open_channel(server: str) -> grpc.Channel:
    """A channel to `host:port` (plaintext, also `http://host:port`) or `https://host[:port]` (TLS)."""
    if server.startswith("https://"):
        address = server.removeprefix("https://").rstrip("/")
        target = address if ":" in address else f"{address}:443"
        return grpc.secure_channel(target, grpc.ssl_channel_credentials())
    return grpc.insecure_channel(server.removeprefix("http://").rstrip("/"))


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, read without verifying it (or None if unreadable).

    The client holds no key to verify with and only needs `exp` to decide when to refresh; the
    server verifies every token. Read by hand because PyJWT would import `cryptography` on every
    command (about 0.15 s) for nothing.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None


def _unauthenticated(error: grpc.RpcError) -> bool:
    return error.code() is grpc.StatusCode.UNAUTHENTICATED


class Session:
    """Calls one server with the stored session's access token, refreshing it when it expires.

    A refreshed pair is saved at once (the old refresh token is spent on the server). If the server
    refuses the refresh token, the stored session is dropped and `NotLoggedIn` says to log in again.
    """

    def __init__(self, server: str, store: CredentialStore, credentials: Credentials) -> None:
        self.server = server
        self.store = store
        self.credentials = credentials
        self.channel = open_channel(server)

    @classmethod
    def resume(cls, server: str, store: CredentialStore | None = None) -> Session:
        """The stored session for `server`; `NotLoggedIn` if there is none."""
        store = store or CredentialStore()
        credentials = store.get(server)
        if credentials is None:
            raise NotLoggedIn(f"not logged in to {server}; run aiorch login")
        return cls(server, store, credentials)

    def close(self) -> None:
        """Close the channel (ends any open stream)."""
        self.channel.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @cached_property
    def tokens(self) -> tokens_pb2_grpc.TokenServiceStub:
        """TokenService (login, refresh, logout)."""
        return tokens_pb2_grpc.TokenServiceStub(self.channel)

    @cached_property
    def profiles(self) -> profiles_pb2_grpc.ProfileServiceStub:
        """ProfileService."""
        return profiles_pb2_grpc.ProfileServiceStub(self.channel)

    @cached_property
    def keys(self) -> keys_pb2_grpc.ApiKeyServiceStub:
        """ApiKeyService."""
        return keys_pb2_grpc.ApiKeyServiceStub(self.channel)

    @cached_property
    def projects(self) -> projects_pb2_grpc.ProjectServiceStub:
        """ProjectService."""
        return projects_pb2_grpc.ProjectServiceStub(self.channel)

    @cached_property
    def jobs(self) -> jobs_pb2_grpc.JobServiceStub:
        """JobService."""
        return jobs_pb2_grpc.JobServiceStub(self.channel)

    @cached_property
    def engines(self) -> engines_pb2_grpc.EngineServiceStub:
        """EngineService (the engine catalog)."""
        return engines_pb2_grpc.EngineServiceStub(self.channel)

    @cached_property
    def files(self) -> files_pb2_grpc.FileServiceStub:
        """FileService (input uploads)."""
        return files_pb2_grpc.FileServiceStub(self.channel)

    @cached_property
    def results(self) -> results_pb2_grpc.JobResultServiceStub:
        """JobResultService (results and downloads)."""
        return results_pb2_grpc.JobResultServiceStub(self.channel)

    def unary(self, method: grpc.UnaryUnaryMultiCallable[Request, Response], request: Request) -> Response:
        """Call a unary method; on UNAUTHENTICATED refresh once and call again."""
        return self._with_refresh(lambda metadata: method(request, timeout=CALL_TIMEOUT_SECONDS, metadata=metadata))

    def upload(
        self,
        method: grpc.StreamUnaryMultiCallable[Request, Response],
        requests: Callable[[], Iterator[Request]],
    ) -> Response:
        """Call a client-streaming method with the messages `requests()` yields (again after a refresh)."""
        return self._with_refresh(lambda metadata: method(requests(), metadata=metadata))

    def stream(
        self,
        method: grpc.UnaryStreamMultiCallable[Request, Response],
        request: Request,
        timeout: float | None = None,
    ) -> Generator[Response, None, None]:
        """Messages of a server stream; refreshes and starts again if the token is refused before the
        first message. Closing the iterator cancels the call."""
        call = method(request, timeout=timeout, metadata=self._metadata())
        messages, first = iter(call), True
        try:
            while True:
                try:
                    message = next(messages)
                except StopIteration:
                    return
                except grpc.RpcError as exc:
                    if not (first and _unauthenticated(exc)):
                        raise
                    self._refresh(self.credentials.access)
                    call = method(request, timeout=timeout, metadata=self._metadata())
                    messages, first = iter(call), False
                    continue
                first = False
                yield message
        finally:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves Call.cancel untyped

    def _with_refresh(self, invoke: Callable[[tuple[tuple[str, str]]], Response]) -> Response:
        try:
            return invoke(self._metadata())
        except grpc.RpcError as exc:
            if not _unauthenticated(exc):
                raise
        self._refresh(self.credentials.access)
        return invoke(self._metadata())

    def _metadata(self) -> tuple[tuple[str, str]]:
        expiry = token_expiry(self.credentials.access)
        if expiry is not None and expiry - EXPIRY_MARGIN_SECONDS <= time.time():
            self._refresh(self.credentials.access)
        return (("authorization", f"Bearer {self.credentials.access}"),)

    def _refresh(self, stale_access: str) -> None:
        with self.store.locked():
            stored = self.store.get(self.server)
            if stored is None:
                raise NotLoggedIn(f"not logged in to {self.server}; run aiorch login")
            if stored.access != stale_access:
                # Another aiorch command refreshed the session meanwhile: use its pair.
                self.credentials = stored
                return
            try:
                pair = self.tokens.RefreshToken(
                    tokens_pb2.RefreshTokenRequest(refresh=stored.refresh), timeout=CALL_TIMEOUT_SECONDS
                )
            except grpc.RpcError as exc:
                if not _unauthenticated(exc):
                    raise
                self.store.remove(self.server)
                raise NotLoggedIn(f"session expired, run aiorch login ({exc.details()})") from exc
            self.credentials = replace(stored, access=pair.access, refresh=pair.refresh)
            self.store.put(self.server, self.credentials)
