"""Refuse a REST call whose body names a different object than its path (PATCH /api/jobs/A with {"id": "B"}).

Envoy's transcoder fills the request from the path variables and then from a `body: "*"` JSON body, so a
body field of the same name wins over the path. Services see only the merged message; the REST path the
client asked for arrives in `x-envoy-original-path`. This interceptor matches that path against the method's
`google.api.http` templates and refuses the call with INVALID_ARGUMENT when a bound field now holds another
value. Native gRPC calls carry no such path and are not affected.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import grpc
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from grpc import aio

from services.common import errors

ORIGINAL_PATH_HEADER = "x-envoy-original-path"
Handler = Any
_VARIABLE = re.compile(r"\{([\w.]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class PathTemplate:
    """One http rule's path as a regular expression, with the request field each group binds."""

    pattern: re.Pattern[str]
    fields: tuple[str, ...]


def _segment_regex(pattern: str) -> str:
    """A variable's sub-pattern (`*`, `**`, `items/*`) as a regular expression."""
    parts = []
    for segment in pattern.split("/"):
        parts.append({"*": "[^/]+", "**": ".+"}.get(segment, re.escape(segment)))
    return "/".join(parts)


def compile_template(template: str) -> PathTemplate:
    """`/api/jobs/{id}` -> a PathTemplate matching `/api/jobs/<id>` (and a trailing `/`, as Envoy does)."""
    regex, position = "", 0
    fields: list[str] = []
    for found in _VARIABLE.finditer(template):
        regex += re.escape(template[position : found.start()])
        regex += f"(?P<v{len(fields)}>{_segment_regex(found.group(2) or '*')})"
        fields.append(found.group(1))
        position = found.end()
    regex += re.escape(template[position:]) + "/?"
    return PathTemplate(re.compile(regex), tuple(fields))


def _rule_path(rule: http_pb2.HttpRule) -> str:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return ""
    return rule.custom.path if kind == "custom" else str(getattr(rule, kind))


@functools.cache
def method_templates(method: str) -> tuple[PathTemplate, ...]:
    """The path templates with variables of a gRPC method ("/pkg.Service/Method"); none if it has no http rule."""
    service, _, name = method.lstrip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return ()
    rule = descriptor.GetOptions().Extensions[annotations_pb2.http]
    paths = (_rule_path(r) for r in (rule, *rule.additional_bindings))
    return tuple(compile_template(p) for p in paths if "{" in p)


def _field_value(message: Message, dotted: str) -> str:
    value: Any = message
    for part in dotted.split("."):
        value = getattr(value, part)
    return str(value)


def check_path_binding(method: str, original_path: str, request: Message) -> None:
    """Raise InvalidArgument when a field bound by the REST path holds a value other than the path's."""
    path = original_path.split("?", 1)[0]
    for template in method_templates(method):
        matched = template.pattern.fullmatch(path)
        if matched is None:
            continue
        for index, field in enumerate(template.fields):
            in_path = unquote(matched.group(f"v{index}"))
            in_request = _field_value(request, field)
            if in_request != in_path:
                raise errors.InvalidArgument(
                    f"{field} in the body ({in_request!r}) differs from the path ({in_path!r})"
                )
        return


def _original_path(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == ORIGINAL_PATH_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class PathBindingInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Runs `check_path_binding` on every transcoded unary-request call before the handler."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.request_streaming or not method_templates(method):
            return handler

        def check(request: Message, context: Any) -> None:
            path = _original_path(context)
            if path is not None:
                check_path_binding(method, path, request)

        if handler.response_streaming:
            inner_stream = handler.unary_stream

            async def streaming(request: Message, context: Any) -> AsyncIterator[Any]:
                check(request, context)
                result = inner_stream(request, context)
                if isinstance(result, Awaitable):
                    await result
                    return
                async for response in result:
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                streaming,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        inner_unary = handler.unary_unary

        async def unary(request: Message, context: Any) -> Any:
            check(request, context)
            return await inner_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
