"""Cross-cutting RPC concerns as small interceptors: metrics, error translation, authentication.

Each one wraps the method handler's behavior in an async context manager, so it sees
unary and streaming calls alike and runs in the task that serves the call (which is
what makes the caller context variable visible to the handler).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc import aio

from services.common import errors, metrics
from services.common.api_keys import ApiKeyView, looks_like_key
from services.common.identity import Caller, TokenVerifier
from services.common.logging import get_logger
from services.common.revocations import RevocationView
from services.common.status import status_for

log = get_logger(__name__)

_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("aiorch_caller", default=None)

# The installed grpc stubs predate grpc.aio's full typing, so handlers and contexts are Any here.
Handler = Any
Context = Any
Around = Callable[["Call", Context], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Call:
    """What an interceptor knows of the RPC it wraps."""

    method: str  # "/package.Service/Method"
    rpc_type: str  # unary, client_stream, server_stream or bidi_stream


def current_caller() -> Caller:
    """The authenticated caller of the RPC being served."""
    caller = _caller.get()
    if caller is None:
        raise errors.Unauthenticated("authentication required")
    return caller


def _rpc_type(handler: Handler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def _wrap(handler: Handler, method: str, around: Around) -> Handler:
    """A handler like `handler` whose behavior runs inside `around(call, context)`."""
    call = Call(method, _rpc_type(handler))
    if handler.response_streaming:
        inner_stream = handler.stream_stream if handler.request_streaming else handler.unary_stream

        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            async with around(call, context):
                responses = inner_stream(request, context)
                if inspect.isawaitable(responses):
                    # The handler writes with context.write itself (to bound how long a write may wait).
                    await responses
                    return
                async for response in responses:
                    yield response

        factory = (
            grpc.stream_stream_rpc_method_handler if handler.request_streaming else grpc.unary_stream_rpc_method_handler
        )
        return factory(
            streaming,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    inner_unary = handler.stream_unary if handler.request_streaming else handler.unary_unary

    async def unary(request: Any, context: Context) -> Any:
        async with around(call, context):
            return await inner_unary(request, context)

    factory_u = (
        grpc.stream_unary_rpc_method_handler if handler.request_streaming else grpc.unary_unary_rpc_method_handler
    )
    return factory_u(
        unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _HandlerInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Base: subclasses give `wrap`, which returns a handler like the given one; unknown methods pass through."""

    def wrap(self, handler: Handler, call: Call) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self.wrap(handler, Call(handler_call_details.method, _rpc_type(handler)))


class _AroundInterceptor(_HandlerInterceptor):
    """Base: subclasses give `around`, an async context manager the call's behavior runs inside."""

    def around(self, call: Call, context: Context) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def wrap(self, handler: Handler, call: Call) -> Handler:
        return _wrap(handler, call.method, self.around)


RequestCheck = Callable[[Call, Message, Context], None]
"""Raises a domain error to refuse a request message before the handler sees it."""


class RequestCheckInterceptor(_HandlerInterceptor):
    """Runs every check on every request message: a unary request before the handler, each message of a
    client stream as the handler reads it. Placed after the error interceptor, so a refusal becomes a status
    like any domain error.
    """

    def __init__(self, checks: Sequence[RequestCheck]) -> None:
        self._checks = tuple(checks)

    def wrap(self, handler: Handler, call: Call) -> Handler:
        return _checking(handler, call, self._checks)


def _checking(handler: Handler, call: Call, checks: tuple[RequestCheck, ...]) -> Handler:
    """A handler like `handler` whose request messages pass `checks` first."""

    def check(request: Message, context: Context) -> None:
        for one in checks:
            one(call, request, context)

    async def checked(requests: AsyncIterator[Message], context: Context) -> AsyncIterator[Message]:
        async for request in requests:
            check(request, context)
            yield request

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        inner_bidi = handler.stream_stream

        async def bidi(requests: AsyncIterator[Message], context: Context) -> AsyncIterator[Any]:
            async for response in _responses(inner_bidi(checked(requests, context), context)):
                yield response

        return grpc.stream_stream_rpc_method_handler(bidi, **kwargs)
    if handler.request_streaming:
        inner_upload = handler.stream_unary

        async def upload(requests: AsyncIterator[Message], context: Context) -> Any:
            return await inner_upload(checked(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(upload, **kwargs)
    if handler.response_streaming:
        inner_stream = handler.unary_stream

        async def streaming(request: Message, context: Context) -> AsyncIterator[Any]:
            check(request, context)
            async for response in _responses(inner_stream(request, context)):
                yield response

        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    inner_unary = handler.unary_unary

    async def unary(request: Message, context: Context) -> Any:
        check(request, context)
        return await inner_unary(request, context)

    return grpc.unary_unary_rpc_method_handler(unary, **kwargs)


async def _responses(result: Any) -> AsyncIterator[Any]:
    """The responses of a server-streaming behavior, which either yields them or writes them itself."""
    if inspect.isawaitable(result):
        await result
        return
    async for response in result:
        yield response


class MetricsInterceptor(_AroundInterceptor):
    """Counts RPCs by service, method and code, and times them."""

    @asynccontextmanager
    async def around(self, call: Call, context: Context) -> AsyncIterator[None]:
        service, _, name = call.method.lstrip("/").rpartition("/")
        rpc_type = call.rpc_type
        metrics.RPC_STARTED.labels(service, name, rpc_type).inc()
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            yield
        except asyncio.CancelledError:
            # The client went away (or the server is stopping): not a failure of the handler.
            code = context.code() or grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            if code is grpc.StatusCode.OK and context.code() is not None:
                code = context.code()
            metrics.RPC_HANDLED.labels(service, name, rpc_type, _code_name(code)).inc()
            metrics.RPC_SECONDS.labels(service, name, rpc_type).observe(time.perf_counter() - started)


def _code_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return code.name
    return str(code)


class ErrorInterceptor(_AroundInterceptor):
    """Turns domain errors into statuses and hides unexpected ones behind INTERNAL."""

    @asynccontextmanager
    async def around(self, call: Call, context: Context) -> AsyncIterator[None]:
        try:
            yield
        except errors.DomainError as exc:
            await context.abort_with_status(status_for(exc))
        except aio.AbortError:
            raise
        except Exception:
            # The stack trace goes to the log, never to the caller.
            log.exception("unhandled error", method=call.method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")


class Authenticator:
    """Turns a bearer credential into the Caller, the one rule for gRPC calls and the HTTP edge alike: an API
    key is checked against the live keys, a JWT by its signature and the revoked sessions."""

    def __init__(self, verifier: TokenVerifier, revocations: RevocationView, api_keys: ApiKeyView) -> None:
        self._verifier = verifier
        self._revocations = revocations
        self._api_keys = api_keys

    async def caller(self, token: str) -> Caller:
        """The caller `token` stands for, or Unauthenticated."""
        if looks_like_key(token):
            return await self._api_keys.caller(token)
        caller = self._verifier.caller(token)
        if self._revocations.is_revoked(caller.family_id):
            raise errors.Unauthenticated("token has been revoked; log in again")
        return caller

    async def from_header(self, authorization: str | None) -> Caller:
        """The caller of an `authorization` header's value."""
        return await self.caller(bearer_token(authorization))


class AuthInterceptor(_AroundInterceptor):
    """Verifies the bearer credential (an access token or an API key) of every call but the public methods
    and sets the caller."""

    PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

    def __init__(self, authenticator: Authenticator, public_methods: frozenset[str] = frozenset()) -> None:
        self._authenticator = authenticator
        self._public = public_methods

    def _is_public(self, method: str) -> bool:
        return method in self._public or method.startswith(self.PUBLIC_PREFIXES)

    @asynccontextmanager
    async def around(self, call: Call, context: Context) -> AsyncIterator[None]:
        if self._is_public(call.method):
            yield
            return
        caller = await self._authenticator.from_header(_authorization(context))
        reset = _caller.set(caller)
        try:
            yield
        finally:
            _caller.reset(reset)


def _authorization(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def bearer_token(authorization: str | None) -> str:
    """The credential of an `authorization: Bearer <credential>` value, or Unauthenticated."""
    if authorization is None:
        raise errors.Unauthenticated("authentication required: send 'authorization: Bearer <access token or API key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("authorization must be 'Bearer <access token or API key>'")
    return token.strip()
