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
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pool
from google.protobuf.message import Message

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


def check_transcoded_path(method: str, request: Message, metadata: Any) -> None:
    """`check_path_binding` for a call that came through the gateway's transcoder (others carry no path)."""
    if not method_templates(method):
        return
    for key, value in metadata or ():
        if key == ORIGINAL_PATH_HEADER:
            check_path_binding(method, value.decode() if isinstance(value, bytes) else str(value), request)
            return
