"""Every string field of every request message of every RPC, and messages with one of them set.

The unit and security tests of the field limits (services/common/field_limits.py) walk the same list,
so a field added to a proto is tested in both without a line here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from aiorch.auth.v1 import profiles_pb2, settings_pb2, tokens_pb2
from aiorch.jobs.v1 import files_pb2, jobs_pb2, results_pb2
from aiorch.projects.v1 import projects_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

# Which service process serves each gRPC service (the keys of Endpoints.grpc).
BACKENDS = {
    "aiorch.auth.v1.TokenService": "auth",
    "aiorch.auth.v1.ProfileService": "auth",
    "aiorch.auth.v1.SettingsService": "auth",
    "aiorch.projects.v1.ProjectService": "projects",
    "aiorch.jobs.v1.JobService": "jobs",
    "aiorch.jobs.v1.FileService": "jobs",
    "aiorch.jobs.v1.JobResultService": "jobs",
}
_MODULES = (tokens_pb2, profiles_pb2, settings_pb2, projects_pb2, jobs_pb2, files_pb2, results_pb2)


@dataclass(frozen=True)
class TextField:
    """One string field reached from a request message: the fields leading to it, outermost first.

    A map field on the way (Struct.fields) is entered through one entry; as the last step its key is the text.
    """

    method: MethodDescriptor
    path: tuple[FieldDescriptor, ...]

    @property
    def name(self) -> str:
        """`Service.Method:field.sub_field`, for test ids."""
        dotted = ".".join(field.name for field in self.path)
        return f"{self.method.containing_service.name}.{self.method.name}:{dotted}"

    @property
    def field(self) -> FieldDescriptor:
        """The last field (the string, or the map whose key is the text)."""
        return self.path[-1]

    def message(self, text: str) -> Message:
        """A request with only this field set, to `text`."""
        request = message_factory.GetMessageClass(self.method.input_type)()
        _set(request, self.path, text)
        return request


def request_methods() -> list[MethodDescriptor]:
    """Every RPC of the aiorch services."""
    return [
        method
        for module in _MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


def text_fields() -> list[TextField]:
    """Every string field (and string-keyed map) of every request message of every RPC."""
    return [TextField(method, path) for method in request_methods() for path in _paths(method.input_type, ())]


def _paths(descriptor: Descriptor, seen: tuple[str, ...]) -> Iterator[tuple[FieldDescriptor, ...]]:
    # A type already on the way (Struct in Value in Struct) is not entered again: its fields are listed once.
    if descriptor.full_name in seen:
        return
    seen = (*seen, descriptor.full_name)
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            yield (field,)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
            entry = field.message_type
            if entry.GetOptions().map_entry:
                if entry.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING:
                    yield (field,)
                value = entry.fields_by_name["value"].message_type
                if value is not None:
                    for rest in _paths(value, seen):
                        yield (field, *rest)
            else:
                for rest in _paths(entry, seen):
                    yield (field, *rest)


def _set(message: Message, path: tuple[FieldDescriptor, ...], text: str) -> None:
    field, rest = path[0], path[1:]
    container = getattr(message, field.name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not rest:
            value = field.message_type.fields_by_name["value"]
            if value.message_type is not None and value.message_type.full_name == "google.protobuf.Value":
                container[text].null_value = 0  # a Value must hold something to be written as JSON
            elif value.type == FieldDescriptor.TYPE_MESSAGE:
                container[text].SetInParent()  # reading a message map's key adds the entry
            else:
                container[text] = ""
            return
        _set(container["k"], rest, text)
    elif field.is_repeated:
        if rest:
            _set(container.add(), rest, text)
        else:
            container.append(text)
    elif rest:
        _set(container, rest, text)
    else:
        setattr(message, field.name, text)
