"""Build the OpenAPI 3 document of the REST API from the descriptor set the gateway transcodes with.

Paths, verbs, bodies and parameters come from the `google.api.http` annotations; schemas from the messages as
the gateway prints them (proto field names, enum names, 64-bit integers as strings, RFC 3339 timestamps: the
`print_options` in gateway/envoy.yaml.tmpl); descriptions from the proto comments; required fields from
`google.api.field_behavior`. Run at build time (`make api-docs`):

    python -m gateway.openapi --descriptor gen/descriptor.pb --out build/web/api/openapi.json
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Importing annotations_pb2 and field_behavior_pb2 registers their options, so a descriptor set parses them
# as extensions rather than unknown bytes.
from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

Schema = dict[str, Any]
FieldProto = descriptor_pb2.FieldDescriptorProto

OPENAPI_VERSION = "3.0.3"
ROOT = Path(__file__).resolve().parent.parent
# The token endpoints take credentials in the body; every other call needs a bearer token. The auth
# service's PUBLIC_METHODS and the gateway's jwt_authn rules name the same methods (a test checks).
PUBLIC_SERVICES = frozenset({"aiorch.auth.v1.TokenService"})
BEARER_SCHEME = "bearer"
HTTP_BODY = ".google.api.HttpBody"
STATUS = "google.rpc.Status"

# Messages that proto3 JSON prints in a form of their own, not as their fields.
WELL_KNOWN_TYPES: dict[str, Schema] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": {}},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string", "description": "The type of the fields beside it."}},
        "additionalProperties": {},
    },
    ".google.protobuf.StringValue": {"type": "string"},
    ".google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    ".google.protobuf.BoolValue": {"type": "boolean"},
    ".google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    ".google.protobuf.FloatValue": {"type": "number", "format": "float"},
    ".google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    ".google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    ".google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    ".google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
}

INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
UINT32 = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
# proto3 JSON writes 64-bit integers as strings (JavaScript numbers lose precision past 2^53).
INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"}
SCALARS: dict[int, Schema] = {
    FieldProto.TYPE_STRING: {"type": "string"},
    FieldProto.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldProto.TYPE_BOOL: {"type": "boolean"},
    FieldProto.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldProto.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldProto.TYPE_INT32: INT32,
    FieldProto.TYPE_SINT32: INT32,
    FieldProto.TYPE_SFIXED32: INT32,
    FieldProto.TYPE_UINT32: UINT32,
    FieldProto.TYPE_FIXED32: UINT32,
    FieldProto.TYPE_INT64: INT64,
    FieldProto.TYPE_SINT64: INT64,
    FieldProto.TYPE_SFIXED64: INT64,
    FieldProto.TYPE_UINT64: UINT64,
    FieldProto.TYPE_FIXED64: UINT64,
}

# Positions of parts in source_code_info paths (the field numbers in descriptor.proto).
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE, SERVICE_METHOD = 2, 2

# What the gateway answers besides success, as HTTP code -> (component name, description). Errors are
# google.rpc.Status JSON; docs/api.md explains which gRPC code maps to which HTTP code.
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "INVALID_ARGUMENT or FAILED_PRECONDITION: a bad value, or not allowed in this state."),
    "401": ("Unauthenticated", "UNAUTHENTICATED: no, malformed, expired or revoked token; failed login."),
    "403": ("PermissionDenied", "PERMISSION_DENIED: a known caller who may not do this."),
    "404": ("NotFound", "NOT_FOUND: no such object, or one the caller may not see."),
    "409": ("Conflict", "ALREADY_EXISTS or ABORTED: the object exists already."),
    "429": ("TooManyRequests", "RESOURCE_EXHAUSTED: too many failed logins (see Retry-After); a stream fell behind."),
    "503": ("Unavailable", "UNAVAILABLE: a backing service or the database is down; retry."),
}
PUBLIC_ERRORS = ("400", "401", "404", "429", "503")


@dataclass(frozen=True)
class Declared:
    """A message, enum or service with the file it is declared in and its source_code_info path."""

    full_name: str
    proto: Any
    file: str
    path: tuple[int, ...]


@dataclass(frozen=True)
class Binding:
    """One HTTP binding of an RPC: verb, path template and what the body carries ("", "*" or a field)."""

    verb: str
    template: str
    body: str


@dataclass(frozen=True)
class PathTemplate:
    """A `google.api.http` path as an OpenAPI path and the request fields its variables fill."""

    path: str
    fields: tuple[str, ...]


_VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=[^}]*)?\}")


def openapi_path(template: str) -> PathTemplate:
    """`/api/jobs/{id}` -> `/api/jobs/{id}/` with field `id`.

    Paths are documented with the trailing slash, as clients of the replaced system write them (the gateway
    takes either form); a `{field=pattern}` variable keeps only its field; a path ending in a custom verb
    (`:cancel`) gets no slash.
    """
    fields = tuple(match.group(1) for match in _VARIABLE.finditer(template))
    path = _VARIABLE.sub(lambda match: "{" + match.group(1) + "}", template)
    has_verb = ":" in path.rsplit("/", 1)[-1]
    if not path.endswith("/") and not has_verb:
        path += "/"
    return PathTemplate(path=path, fields=fields)


def http_bindings(rule: http_pb2.HttpRule) -> list[Binding]:
    """The rule's own binding, then its additional bindings."""
    bindings = []
    for each in (rule, *rule.additional_bindings):
        pattern = each.WhichOneof("pattern")
        if pattern is None:
            continue
        if pattern == "custom":
            bindings.append(Binding(each.custom.kind.lower(), each.custom.path, each.body))
        else:
            bindings.append(Binding(pattern, getattr(each, pattern), each.body))
    return bindings


def clean_comment(text: str) -> str:
    """A proto comment as Markdown: the one space after `//` and the outer blank lines dropped."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.splitlines()]
    return "\n".join(lines).strip()


def summary_of(comment: str) -> str:
    """The first sentence of a comment, for an operation's one-line summary."""
    first = comment.split("\n\n", 1)[0].replace("\n", " ")
    # A sentence ends at a stop followed by a capital, so "e.g. all" stays whole.
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z])", first, maxsplit=1)[0]
    return sentence.rstrip(".")


def schema_name(type_name: str) -> str:
    """`.aiorch.jobs.v1.Job` -> `aiorch.jobs.v1.Job`, the component name of a message or enum."""
    return type_name.lstrip(".")


def ref(type_name: str) -> Schema:
    """A reference to the component of a message or enum."""
    return {"$ref": f"#/components/schemas/{schema_name(type_name)}"}


def field_behaviors(field: FieldProto) -> set[int]:
    """The `google.api.field_behavior` values on a field."""
    return set(field.options.Extensions[field_behavior_pb2.field_behavior])


def is_required(field: FieldProto) -> bool:
    """Whether the field is annotated REQUIRED."""
    return field_behavior_pb2.REQUIRED in field_behaviors(field)


class ProtoIndex:
    """Every message, enum, service and comment of a descriptor set, by full name."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self.messages: dict[str, Declared] = {}
        self.enums: dict[str, Declared] = {}
        self.services: list[Declared] = []
        self._comments: dict[tuple[str, tuple[int, ...]], str] = {}
        for file in files:
            for location in file.source_code_info.location:
                if location.leading_comments:
                    self._comments[(file.name, tuple(location.path))] = clean_comment(location.leading_comments)
            prefix = f".{file.package}" if file.package else ""
            for i, message in enumerate(file.message_type):
                self._add_message(message, prefix, file.name, (FILE_MESSAGE, i))
            for i, enum in enumerate(file.enum_type):
                name = f"{prefix}.{enum.name}"
                self.enums[name] = Declared(name, enum, file.name, (FILE_ENUM, i))
            for i, service in enumerate(file.service):
                self.services.append(Declared(f"{file.package}.{service.name}", service, file.name, (FILE_SERVICE, i)))

    def _add_message(
        self, message: descriptor_pb2.DescriptorProto, prefix: str, file: str, path: tuple[int, ...]
    ) -> None:
        name = f"{prefix}.{message.name}"
        self.messages[name] = Declared(name, message, file, path)
        for i, nested in enumerate(message.nested_type):
            self._add_message(nested, name, file, (*path, MESSAGE_NESTED, i))
        for i, enum in enumerate(message.enum_type):
            self.enums[f"{name}.{enum.name}"] = Declared(f"{name}.{enum.name}", enum, file, (*path, MESSAGE_ENUM, i))

    @classmethod
    def from_file(cls, path: Path) -> ProtoIndex:
        """Read a serialized FileDescriptorSet (protoc --descriptor_set_out --include_source_info)."""
        return cls(descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file)

    def comment(self, declared: Declared, *sub_path: int) -> str:
        """The leading comment of a declaration (or of a part of it: a field, value or method)."""
        return self._comments.get((declared.file, (*declared.path, *sub_path)), "")

    def fields(self, message: Declared) -> Iterator[tuple[int, FieldProto]]:
        """The message's fields with their positions."""
        yield from enumerate(message.proto.field)


class SchemaBuilder:
    """Turns messages and enums into OpenAPI schema components, collecting the ones it references."""

    def __init__(self, index: ProtoIndex) -> None:
        self.index = index
        self.components: dict[str, Schema] = {}

    def _is_map(self, field: FieldProto) -> bool:
        entry = self.index.messages.get(field.type_name)
        return field.label == FieldProto.LABEL_REPEATED and entry is not None and entry.proto.options.map_entry

    def type_schema(self, field: FieldProto) -> Schema:
        """The schema of one value of the field (an item, for a repeated field)."""
        if field.type == FieldProto.TYPE_ENUM:
            self.enum_component(field.type_name)
            return ref(field.type_name)
        if field.type == FieldProto.TYPE_MESSAGE:
            if field.type_name in WELL_KNOWN_TYPES:
                return dict(WELL_KNOWN_TYPES[field.type_name])
            if field.type_name == HTTP_BODY:
                return {"type": "string", "format": "binary"}
            self.message_component(field.type_name)
            return ref(field.type_name)
        return dict(SCALARS[field.type])

    def field_schema(self, message: Declared, position: int, field: FieldProto) -> Schema:
        """The schema of a field as it appears in its message's JSON, with its comment as description."""
        if self._is_map(field):
            value_field = self.index.messages[field.type_name].proto.field[1]
            schema: Schema = {"type": "object", "additionalProperties": self.type_schema(value_field)}
        elif field.label == FieldProto.LABEL_REPEATED:
            schema = {"type": "array", "items": self.type_schema(field)}
        else:
            schema = self.type_schema(field)
        description = self.index.comment(message, MESSAGE_FIELD, position)
        oneof = self._oneof_of(message, field)
        if oneof:
            description = f"{description}\n\nOne of `{oneof}`: set at most one of its fields.".strip()
        if "$ref" in schema:
            # Siblings of $ref are ignored in OpenAPI 3.0: wrap the reference to keep the description.
            schema = {"allOf": [schema]}
        if description:
            schema["description"] = description
        if field_behavior_pb2.OUTPUT_ONLY in field_behaviors(field):
            schema["readOnly"] = True
        return schema

    @staticmethod
    def _oneof_of(message: Declared, field: FieldProto) -> str:
        if not field.HasField("oneof_index") or field.proto3_optional:
            return ""
        name: str = message.proto.oneof_decl[field.oneof_index].name
        return name

    def message_schema(self, type_name: str, exclude: frozenset[str] = frozenset()) -> Schema:
        """The object schema of a message, without the `exclude`d fields (those a path fills)."""
        message = self.index.messages[type_name]
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for position, field in self.index.fields(message):
            if field.name in exclude:
                continue
            properties[field.name] = self.field_schema(message, position, field)
            if is_required(field):
                required.append(field.name)
        schema: Schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        real_oneofs = {
            f.oneof_index for f in message.proto.field if f.HasField("oneof_index") and not f.proto3_optional
        }
        if len(real_oneofs) == 1 and all(f.HasField("oneof_index") for f in message.proto.field):
            # A message that is nothing but one oneof (JobParams): exactly its one member is printed.
            schema["maxProperties"] = 1
        description = self.index.comment(message)
        if description:
            schema["description"] = description
        return schema

    def message_component(self, type_name: str) -> Schema:
        """A reference to the message's component, building the component (and what it uses) once."""
        name = schema_name(type_name)
        if name not in self.components:
            self.components[name] = {}  # placed first: a message may refer to itself
            self.components[name] = self.message_schema(type_name)
        return ref(type_name)

    def enum_component(self, type_name: str) -> Schema:
        """A reference to the enum's component: its value names, each value's comment in the description."""
        name = schema_name(type_name)
        if name not in self.components:
            enum = self.index.enums[type_name]
            values = [value.name for value in enum.proto.value]
            lines = [self.index.comment(enum)]
            for position, value in enumerate(enum.proto.value):
                note = self.index.comment(enum, ENUM_VALUE, position).replace("\n", " ")
                lines.append(f"- `{value.name}`: {note}" if note else f"- `{value.name}`")
            self.components[name] = {"type": "string", "enum": values, "description": "\n".join(lines).strip()}
        return ref(type_name)


@dataclass(frozen=True)
class Rpc:
    """One RPC with an HTTP binding, as the document needs it."""

    service: Declared
    method: descriptor_pb2.MethodDescriptorProto
    position: int
    binding: Binding
    operation_id: str

    @property
    def grpc_name(self) -> str:
        """`aiorch.jobs.v1.JobService/GetJob`."""
        return f"{self.service.full_name}/{self.method.name}"


def rpcs_of(index: ProtoIndex) -> Iterator[Rpc]:
    """Every HTTP binding of every RPC, with an operation id unique in the document."""
    for service in index.services:
        for position, method in enumerate(service.proto.method):
            if not method.options.HasExtension(annotations_pb2.http):
                continue
            rule = method.options.Extensions[annotations_pb2.http]
            for n, binding in enumerate(http_bindings(rule), start=1):
                suffix = "" if n == 1 else f"_{n}"
                yield Rpc(service, method, position, binding, f"{service.proto.name}_{method.name}{suffix}")


def _query_parameters(
    builder: SchemaBuilder, type_name: str, skip: frozenset[str], prefix: str = ""
) -> Iterator[Schema]:
    """Query parameters for the request fields no path or body takes; nested messages as `a.b`."""
    message = builder.index.messages[type_name]
    for position, field in builder.index.fields(message):
        name = f"{prefix}{field.name}"
        if name in skip:
            continue
        nested = field.type == FieldProto.TYPE_MESSAGE and field.type_name not in WELL_KNOWN_TYPES
        if nested and field.label != FieldProto.LABEL_REPEATED:
            yield from _query_parameters(builder, field.type_name, skip, f"{name}.")
            continue
        if nested:
            continue  # a repeated message has no query form
        schema = builder.field_schema(message, position, field)
        description = schema.pop("description", "")
        parameter: Schema = {"name": name, "in": "query", "required": is_required(field), "schema": schema}
        if description:
            parameter["description"] = description
        if field.label == FieldProto.LABEL_REPEATED:
            parameter.update(style="form", explode=True)
        yield parameter


def _path_parameters(builder: SchemaBuilder, type_name: str, fields: tuple[str, ...]) -> list[Schema]:
    message = builder.index.messages[type_name]
    comments = {
        field.name: builder.index.comment(message, MESSAGE_FIELD, i) for i, field in builder.index.fields(message)
    }
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            **({"description": comments[name]} if comments.get(name) else {}),
        }
        for name in fields
    ]


def _request_body(builder: SchemaBuilder, rpc: Rpc, path_fields: tuple[str, ...]) -> Schema | None:
    body = rpc.binding.body
    if not body:
        return None
    input_type = rpc.method.input_type
    if body == "*":
        if path_fields:
            schema = builder.message_schema(input_type, exclude=frozenset(path_fields))
        else:
            schema = builder.message_component(input_type)
        return {"required": True, "content": {"application/json": {"schema": schema}}}
    field = next(f for f in builder.index.messages[input_type].proto.field if f.name == body)
    if field.type_name == HTTP_BODY:
        binary = {"schema": {"type": "string", "format": "binary"}}
        return {
            "required": True,
            "description": "The raw content; `Content-Type` names the media type the client claims.",
            "content": {"application/octet-stream": binary},
        }
    return {"required": True, "content": {"application/json": {"schema": builder.type_schema(field)}}}


def _success_response(builder: SchemaBuilder, rpc: Rpc) -> Schema:
    output = rpc.method.output_type
    if output == HTTP_BODY:
        return {
            "description": "The raw bytes; `Content-Type` is the file's media type (e.g. `audio/x-wav`).",
            "content": {
                # A file that is JSON (a transcript.json result) is whatever JSON it holds, not a string.
                "application/json": {"schema": {}},
                "*/*": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    schema = builder.message_component(output)
    if rpc.method.server_streaming:
        return {
            "description": (
                f"Server-Sent Events: each message is one `data: <{schema_name(output)} as JSON>` line and a blank"
                " line. The stream stays open while there is more to send."
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _operation(builder: SchemaBuilder, rpc: Rpc) -> tuple[str, Schema]:
    template = openapi_path(rpc.binding.template)
    comment = builder.index.comment(rpc.service, SERVICE_METHOD, rpc.position)
    public = rpc.service.full_name in PUBLIC_SERVICES
    operation: Schema = {
        "tags": [rpc.service.proto.name],
        "operationId": rpc.operation_id,
        "summary": summary_of(comment) or rpc.method.name,
        "description": f"{comment}\n\ngRPC: `{rpc.grpc_name}`".strip(),
    }
    skip = frozenset(template.fields) | ({rpc.binding.body} if rpc.binding.body else set())
    parameters = _path_parameters(builder, rpc.method.input_type, template.fields)
    if rpc.binding.body != "*":
        parameters += _query_parameters(builder, rpc.method.input_type, skip)
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(builder, rpc, template.fields)
    if body:
        operation["requestBody"] = body
    errors = PUBLIC_ERRORS if public else tuple(ERROR_RESPONSES)
    operation["responses"] = {
        "200": _success_response(builder, rpc),
        **{code: {"$ref": f"#/components/responses/{ERROR_RESPONSES[code][0]}"} for code in errors},
    }
    if public:
        operation["security"] = []
    return template.path, operation


_LEADING_VARIABLE = re.compile(r"^\{([^}/]+)\}/")


def add_links(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    """Link each create (a POST answering an object with an `id`) to the operations on that object's path.

    `POST /api/jobs/` answers a job whose `id` fills `{id}` in `/api/jobs/{id}/...`: readers see where an id
    goes, and schemathesis's stateful phase chains the calls. Variables of the collection's own path (a nested
    collection) pass through from the create request.
    """
    for collection, item in paths.items():
        create = item.get("post")
        if create is None:
            continue
        success = create["responses"]["200"]
        target = success.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        if "id" not in schemas.get(target.rsplit("/", 1)[-1], {}).get("properties", {}):
            continue
        outer = {name: f"$request.path.{name}" for name in openapi_path(collection).fields}
        links: dict[str, Schema] = {}
        for path, operations in paths.items():
            match = _LEADING_VARIABLE.match(path.removeprefix(collection)) if path.startswith(collection) else None
            if match is None:
                continue
            parameters = {**outer, match.group(1): "$response.body#/id"}
            for operation in operations.values():
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                    "description": f"The created object's `id` is `{match.group(1)}` of {path}.",
                }
        if links:
            success["links"] = links


def build_document(index: ProtoIndex, version: str) -> Schema:
    """The OpenAPI document of every RPC with an HTTP binding in the index."""
    if f".{STATUS}" not in index.messages:
        raise ValueError(f"the descriptor set lacks {STATUS}, the error body: add google/rpc/status.proto to it")
    builder = SchemaBuilder(index)
    builder.message_component(f".{STATUS}")
    paths: dict[str, Schema] = {}
    tags: dict[str, Schema] = {}
    for rpc in rpcs_of(index):
        path, operation = _operation(builder, rpc)
        if rpc.binding.verb in paths.get(path, {}):
            raise ValueError(f"{rpc.binding.verb.upper()} {path} is bound twice ({rpc.grpc_name})")
        paths.setdefault(path, {})[rpc.binding.verb] = operation
        tags[rpc.service.proto.name] = {"name": rpc.service.proto.name, "description": index.comment(rpc.service)}
    add_links(paths, builder.components)
    error = {"application/json": {"schema": ref(f".{STATUS}")}}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "aiorch REST API",
            "version": version,
            "description": (
                "REST/JSON face of the aiorch gRPC services, transcoded by the Envoy gateway. JSON field names"
                " are the proto field names (snake_case); enums are their names; 64-bit integers are strings;"
                " timestamps are RFC 3339. Responses carry every scalar field, with its default when unset."
                " Paths work with and without the trailing slash. Errors are `google.rpc.Status` JSON"
                " (`code` is the gRPC code). Log in with `POST /api/token/` and send"
                " `Authorization: Bearer <access>` on every other call."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "tags": sorted(tags.values(), key=lambda tag: str(tag["name"])),
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(builder.components.items())),
            "responses": {
                name: {"description": description, "content": error} for name, description in ERROR_RESPONSES.values()
            },
            "securitySchemes": {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The `access` token of `POST /api/token/`.",
                }
            },
        },
        "security": [{BEARER_SCHEME: []}],
    }


def project_version() -> str:
    """The version in pyproject.toml."""
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--descriptor", type=Path, required=True, help="FileDescriptorSet with source info")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON document")
    parser.add_argument("--api-version", help="info.version (default: the version in pyproject.toml)")
    args = parser.parse_args()
    document = build_document(ProtoIndex.from_file(args.descriptor), args.api_version or project_version())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
