"""Refuse request text over its field's limit (services/common/field_limits.py) before any handler runs.

Every method of every service is checked alike, so a new RPC or field is bounded without a line in its
handler. Client streams (uploads) are checked message by message as the handler reads them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc import aio

from services.common.field_limits import check_field_limits

# The installed grpc stubs predate grpc.aio's full typing, so handlers and contexts are Any here.
Handler = Any
Context = Any


class FieldLimitsInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Runs `check_field_limits` on every request message; placed after the error interceptor.

    An over-long field then answers INVALID_ARGUMENT naming the field and its limit, like any domain error.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.request_streaming:
            return _checking_stream(handler)
        return _checking_unary(handler)


def _checking_unary(handler: Handler) -> Handler:
    """A handler like `handler` (unary request) that checks its request first."""
    if handler.response_streaming:
        inner_stream = handler.unary_stream

        async def streaming(request: Message, context: Context) -> AsyncIterator[Any]:
            check_field_limits(request)
            async for response in _responses(inner_stream(request, context)):
                yield response

        return grpc.unary_stream_rpc_method_handler(
            streaming,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    inner_unary = handler.unary_unary

    async def unary(request: Message, context: Context) -> Any:
        check_field_limits(request)
        return await inner_unary(request, context)

    return grpc.unary_unary_rpc_method_handler(
        unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _checking_stream(handler: Handler) -> Handler:
    """A handler like `handler` (streamed requests) that checks each message as the handler reads it."""
    if handler.response_streaming:
        inner_bidi = handler.stream_stream

        async def bidi(requests: AsyncIterator[Message], context: Context) -> AsyncIterator[Any]:
            async for response in _responses(inner_bidi(_checked(requests), context)):
                yield response

        return grpc.stream_stream_rpc_method_handler(
            bidi,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    inner_upload = handler.stream_unary

    async def upload(requests: AsyncIterator[Message], context: Context) -> Any:
        return await inner_upload(_checked(requests), context)

    return grpc.stream_unary_rpc_method_handler(
        upload,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


async def _checked(requests: AsyncIterator[Message]) -> AsyncIterator[Message]:
    async for request in requests:
        check_field_limits(request)
        yield request


async def _responses(result: Any) -> AsyncIterator[Any]:
    """The responses of a server-streaming behavior, which either yields them or writes them itself."""
    if inspect.isawaitable(result):
        await result
        return
    async for response in result:
        yield response
