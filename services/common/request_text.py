"""Refuse request text that PostgreSQL cannot store: a NUL character in any string of the request.

PostgreSQL `text` and `jsonb` hold no NUL (U+0000); psycopg2 refuses such a parameter with a ValueError,
which would surface as INTERNAL. Checking every request once, before any handler runs, turns it into
INVALID_ARGUMENT naming the field, for every method of every service alike (filters and search terms included).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc import aio

from services.common import errors

NUL = "\x00"
Handler = Any


def nul_field(message: Message, prefix: str = "") -> str | None:
    """The dotted name of the first string (or map key) in `message` holding a NUL character, if any."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = list(value.items())
            values = [item for _, item in items]
            if any(isinstance(key, str) and NUL in key for key, _ in items):
                return name
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            if isinstance(item, str) and NUL in item:
                return name
            if isinstance(item, Message):
                found = nul_field(item, f"{name}.")
                if found:
                    return found
    return None


def check_request_text(request: Message) -> None:
    """Raise InvalidArgument when a string of the request holds a NUL character."""
    field = nul_field(request)
    if field is not None:
        raise errors.InvalidArgument(f"{field} must not contain NUL (\\u0000) characters")


class RequestTextInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Checks the request of every unary-request call with `check_request_text` before the handler runs.

    Client streams (uploads) are not checked: their text is a file name, which the files service sanitizes.
    Placed after the error interceptor, so the refusal becomes a status like any domain error.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        if handler.response_streaming:
            inner_stream = handler.unary_stream

            async def streaming(request: Message, context: Any) -> AsyncIterator[Any]:
                check_request_text(request)
                async for response in _responses(inner_stream(request, context)):
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                streaming,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        inner_unary = handler.unary_unary

        async def unary(request: Message, context: Any) -> Any:
            check_request_text(request)
            return await inner_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def _responses(result: Any) -> AsyncIterator[Any]:
    """The responses of a server-streaming behavior, which either yields them or writes them itself."""
    if isinstance(result, Awaitable):
        await result
        return
    async for response in result:
        yield response
