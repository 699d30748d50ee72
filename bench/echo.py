"""The baseline service: a trivial grpc.aio echo, reachable directly and through the gateway as REST.

It has no generated code: the handler returns the request bytes unchanged (request and reply are
one message type), and its descriptor is built here so that Envoy can transcode `POST /bench/echo`.
Run it as `python -m bench.echo PORT`.
"""

from __future__ import annotations

import sys

import grpc
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.server import run_on_uvloop

PACKAGE = "bench.echo.v1"
SERVICE = f"{PACKAGE}.EchoService"
METHOD = f"/{SERVICE}/Echo"
REST_PATH = "/bench/echo"


def echo_file() -> descriptor_pb2.FileDescriptorProto:
    """bench/echo.proto: `rpc Echo(EchoMessage) returns (EchoMessage)` at POST /bench/echo."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="bench/echo/v1/echo.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    message = proto.message_type.add(name="EchoMessage")
    message.field.add(
        name="text",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        json_name="text",
    )
    method = proto.service.add(name="EchoService").method.add(
        name="Echo", input_type=f".{PACKAGE}.EchoMessage", output_type=f".{PACKAGE}.EchoMessage"
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(http_pb2.HttpRule(post=REST_PATH, body="*"))
    return proto


def descriptor_set_with_echo(base: bytes) -> bytes:
    """The gateway's descriptor set plus the echo file and whatever of its imports the set lacks."""
    files = descriptor_pb2.FileDescriptorSet.FromString(base)
    present = {f.name for f in files.file}
    for module in (descriptor_pb2, http_pb2, annotations_pb2):
        if module.DESCRIPTOR.name not in present:
            module.DESCRIPTOR.CopyToProto(files.file.add())
            present.add(module.DESCRIPTOR.name)
    files.file.append(echo_file())
    return files.SerializeToString()


def echo_message(text: str) -> bytes:
    """An EchoMessage on the wire: field 1, length-delimited (short texts only)."""
    data = text.encode()
    if len(data) > 127:
        raise ValueError("echo texts are kept under 128 bytes (one-byte length)")
    return bytes([0x0A, len(data)]) + data


async def _echo(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(port: int) -> None:
    """Serve the echo and the health service on 127.0.0.1:port until killed."""
    server = aio.server()
    handler = grpc.method_handlers_generic_handler(SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)})
    server.add_generic_rpc_handlers((handler,))
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()


if __name__ == "__main__":
    # The services' own loop, so that the baseline differs from them only in the work done per call.
    run_on_uvloop(serve(int(sys.argv[1])))
