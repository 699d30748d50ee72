"""The OpenAPI generator: path templates, bindings, schemas from a small proto, and the real document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import google.api.annotations_pb2
import grpc_tools
import pytest
from google.api import http_pb2
from grpc_tools import protoc
from openapi_spec_validator import validate

from gateway.openapi import (
    Binding,
    ProtoIndex,
    build_document,
    clean_comment,
    http_bindings,
    openapi_path,
    summary_of,
)
from services.auth.app import PUBLIC_METHODS

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "gen" / "descriptor.pb"
GOOGLEAPIS = Path(google.api.annotations_pb2.__file__).resolve().parents[2]
WELL_KNOWN = Path(grpc_tools.__file__).resolve().parent / "_proto"

DEMO_PROTO = """
syntax = "proto3";

package demo.v1;

import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/protobuf/timestamp.proto";

// Keeps widgets on shelves.
service WidgetService {
  // Makes a widget. It starts unpainted.
  rpc CreateWidget(CreateWidgetRequest) returns (Widget) {
    option (google.api.http) = {post: "/v1/shelves/{shelf}/widgets" body: "*"};
  }
  // Reads a widget.
  rpc GetWidget(GetWidgetRequest) returns (Widget) {
    option (google.api.http) = {
      get: "/v1/shelves/{shelf}/widgets/{id}"
      additional_bindings {get: "/v1/widgets/{id=*}"}
    };
  }
  // Lists widgets.
  rpc ListWidgets(ListWidgetsRequest) returns (ListWidgetsResponse) {
    option (google.api.http) = {get: "/v1/widgets"};
  }
  // Follows every change.
  rpc WatchWidgets(ListWidgetsRequest) returns (stream Widget) {
    option (google.api.http) = {get: "/v1/widgets:watch"};
  }
  // Not on the REST API.
  rpc Sync(GetWidgetRequest) returns (Widget);
}

// How a widget looks.
enum Color {
  // Unset.
  COLOR_UNSPECIFIED = 0;
  // Like fire.
  RED = 1;
}

// A round shape.
message Round {
  // Across, in mm.
  float diameter = 1;
}

// A thing on a shelf.
message Widget {
  // Opaque id.
  string id = 1;
  // Grams.
  int64 weight = 2;
  // Its paint.
  Color color = 3;
  // Counted things.
  map<string, int32> counts = 4;
  // When made.
  google.protobuf.Timestamp made_at = 5;
  // Labels.
  repeated string tags = 6;
  // Its shape.
  oneof shape {
    // A circle.
    Round round = 7;
    // A side, in mm.
    uint32 square = 8;
  }
  // Set or not.
  optional string note = 9;
  // What it was made from.
  Widget parent = 10;
}

// A new widget.
message CreateWidgetRequest {
  // The shelf.
  string shelf = 1;
  // Its paint.
  Color color = 2 [(google.api.field_behavior) = REQUIRED];
  // Labels.
  repeated string tags = 3;
}

// Which widget.
message GetWidgetRequest {
  // The shelf.
  string shelf = 1;
  // The widget.
  string id = 2;
}

// What to list.
message Filter {
  // Only this paint.
  Color color = 1;
}

// A page of widgets.
message ListWidgetsRequest {
  // At most this many.
  int32 page_size = 1;
  // Narrowing.
  Filter filter = 2;
  // Any of these labels.
  repeated string tags = 3;
  // Not in queries.
  repeated Filter filters = 4;
}

// One page.
message ListWidgetsResponse {
  // The widgets.
  repeated Widget widgets = 1;
}
"""


def compile_descriptor(folder: Path, proto: str) -> Path:
    """protoc's descriptor set of one proto file and the error status, with imports and comments, as `make gen`."""
    (folder / "demo.proto").write_text(proto)
    out = folder / "demo.pb"
    code = protoc.main(
        [
            "protoc",
            f"-I{folder}",
            f"-I{GOOGLEAPIS}",
            f"-I{WELL_KNOWN}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            "--include_source_info",
            "demo.proto",
            "google/rpc/status.proto",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    index = ProtoIndex.from_file(compile_descriptor(tmp_path_factory.mktemp("proto"), DEMO_PROTO))
    return build_document(index, "9.9.9")


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    return build_document(ProtoIndex.from_file(DESCRIPTOR), "0.0.0")


def component(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


@pytest.mark.parametrize(
    ("template", "path", "fields"),
    [
        ("/api/jobs", "/api/jobs/", ()),
        ("/api/jobs/{id}", "/api/jobs/{id}/", ("id",)),
        (
            "/api/projects/{project_id}/members/{user_id}",
            "/api/projects/{project_id}/members/{user_id}/",
            ("project_id", "user_id"),
        ),
        ("/v1/{name=shelves/*}", "/v1/{name}/", ("name",)),
        ("/v1/{book.id}", "/v1/{book.id}/", ("book.id",)),
        ("/v1/widgets:watch", "/v1/widgets:watch", ()),
    ],
)
def test_path_templates_get_the_trailing_slash_and_plain_variables(
    template: str, path: str, fields: tuple[str, ...]
) -> None:
    converted = openapi_path(template)
    assert converted.path == path
    assert converted.fields == fields


def test_a_rule_yields_its_own_binding_then_the_additional_ones() -> None:
    rule = http_pb2.HttpRule(
        patch="/api/jobs/{id}",
        body="*",
        additional_bindings=[
            http_pb2.HttpRule(put="/api/jobs/{id}", body="*"),
            http_pb2.HttpRule(custom=http_pb2.CustomHttpPattern(kind="HEAD", path="/api/jobs/{id}")),
        ],
    )
    assert http_bindings(rule) == [
        Binding("patch", "/api/jobs/{id}", "*"),
        Binding("put", "/api/jobs/{id}", "*"),
        Binding("head", "/api/jobs/{id}", ""),
    ]


def test_comments_become_markdown_and_summaries_their_first_sentence() -> None:
    assert clean_comment(" Reads a job.\n\n Second paragraph.\n") == "Reads a job.\n\nSecond paragraph."
    assert summary_of("Makes a widget. It starts unpainted.") == "Makes a widget"
    assert summary_of("Lists (e.g. all) widgets\nacross lines.") == "Lists (e.g. all) widgets across lines"


def test_the_demo_document_is_valid_openapi(demo: dict[str, Any]) -> None:
    validate(demo)
    assert demo["info"]["version"] == "9.9.9"
    assert demo["tags"] == [{"name": "WidgetService", "description": "Keeps widgets on shelves."}]


def test_scalars_print_as_proto3_json(demo: dict[str, Any]) -> None:
    widget = component(demo, "demo.v1.Widget")
    properties = widget["properties"]
    assert widget["description"] == "A thing on a shelf."
    assert properties["id"] == {"type": "string", "description": "Opaque id."}
    assert properties["weight"]["type"] == "string"  # int64 is a JSON string
    assert properties["weight"]["pattern"] == "^-?[0-9]{1,19}$"
    assert properties["made_at"] == {"type": "string", "format": "date-time", "description": "When made."}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}, "description": "Labels."}
    assert properties["counts"]["additionalProperties"]["maximum"] == 2**31 - 1
    assert properties["parent"]["allOf"] == [{"$ref": "#/components/schemas/demo.v1.Widget"}]
    assert component(demo, "demo.v1.Round")["properties"]["diameter"]["type"] == "number"


def test_enums_are_their_names_with_each_value_described(demo: dict[str, Any]) -> None:
    color = component(demo, "demo.v1.Color")
    assert color["type"] == "string"
    assert color["enum"] == ["COLOR_UNSPECIFIED", "RED"]
    assert "- `RED`: Like fire." in color["description"]


def test_oneof_members_say_so_and_proto3_optional_does_not(demo: dict[str, Any]) -> None:
    properties = component(demo, "demo.v1.Widget")["properties"]
    assert "One of `shape`" in properties["round"]["description"]
    assert "One of `shape`" in properties["square"]["description"]
    assert "One of" not in properties["note"]["description"]


def test_a_body_drops_path_fields_and_keeps_required_ones(demo: dict[str, Any]) -> None:
    create = demo["paths"]["/v1/shelves/{shelf}/widgets/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"color", "tags"}
    assert body["required"] == ["color"]
    assert create["parameters"] == [
        {"name": "shelf", "in": "path", "required": True, "schema": {"type": "string"}, "description": "The shelf."}
    ]
    assert create["summary"] == "Makes a widget"
    assert create["description"].endswith("gRPC: `demo.v1.WidgetService/CreateWidget`")


def test_each_binding_is_an_operation_with_its_own_id(demo: dict[str, Any]) -> None:
    assert demo["paths"]["/v1/shelves/{shelf}/widgets/{id}/"]["get"]["operationId"] == "WidgetService_GetWidget"
    assert demo["paths"]["/v1/widgets/{id}/"]["get"]["operationId"] == "WidgetService_GetWidget_2"
    operations = [op for item in demo["paths"].values() for op in item.values()]
    assert not any("Sync" in op["operationId"] for op in operations)


def test_get_fields_become_query_parameters(demo: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in demo["paths"]["/v1/widgets/"]["get"]["parameters"]}
    assert set(parameters) == {"page_size", "filter.color", "tags"}
    assert parameters["page_size"]["schema"]["format"] == "int32"
    assert parameters["filter.color"]["schema"] == {"allOf": [{"$ref": "#/components/schemas/demo.v1.Color"}]}
    assert parameters["tags"]["explode"] is True
    assert all(p["in"] == "query" and p["required"] is False for p in parameters.values())


def test_server_streams_are_server_sent_events(demo: dict[str, Any]) -> None:
    watch = demo["paths"]["/v1/widgets:watch"]["get"]["responses"]["200"]
    assert list(watch["content"]) == ["text/event-stream"]
    assert "`data: <demo.v1.Widget as JSON>`" in watch["description"]


def test_errors_and_bearer_auth_are_declared(demo: dict[str, Any]) -> None:
    responses = demo["paths"]["/v1/widgets/"]["get"]["responses"]
    assert responses["404"] == {"$ref": "#/components/responses/NotFound"}
    status = demo["components"]["responses"]["NotFound"]["content"]["application/json"]["schema"]
    assert status == {"$ref": "#/components/schemas/google.rpc.Status"}
    assert demo["security"] == [{"bearer": []}]
    assert demo["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_a_create_links_to_the_operations_on_what_it_created(demo: dict[str, Any]) -> None:
    links = demo["paths"]["/v1/shelves/{shelf}/widgets/"]["post"]["responses"]["200"]["links"]
    assert links["WidgetService_GetWidget"]["parameters"] == {
        "shelf": "$request.path.shelf",
        "id": "$response.body#/id",
    }


def test_the_real_document_is_valid_openapi(real: dict[str, Any]) -> None:
    validate(real)


def test_the_replaced_systems_paths_are_all_there(real: dict[str, Any]) -> None:
    expected = {
        ("post", "/api/token/"),
        ("post", "/api/token/refresh/"),
        ("post", "/api/token/verify/"),
        ("get", "/api/profiles/"),
        ("patch", "/api/profiles/{id}/"),
        ("get", "/api/projects/{project_id}/jobs/"),
        ("get", "/api/jobs/{id}/result/"),
        ("patch", "/api/jobs/{id}/update_progress/"),
        ("post", "/api/jobs/{id}/cancel/"),
        ("get", "/api/job-results/{id}/job_details/"),
        ("delete", "/api/settings/{id}/"),
    }
    present = {(verb, path) for path, item in real["paths"].items() for verb in item}
    assert expected <= present


def test_public_operations_are_exactly_the_auth_services_public_methods(real: dict[str, Any]) -> None:
    public = {
        "/aiorch.auth.v1." + op["description"].rsplit("`aiorch.auth.v1.", 1)[1].rstrip("`")
        for item in real["paths"].values()
        for op in item.values()
        if op.get("security") == []
    }
    assert public == set(PUBLIC_METHODS)


def test_job_fields_keep_the_replaced_systems_json(real: dict[str, Any]) -> None:
    assert component(real, "aiorch.jobs.v1.JobType")["enum"][1:] == [
        "STT",
        "TTS",
        "VOICE_CLONING",
        "DUBBING",
        "AI_STORIES",
    ]
    assert component(real, "aiorch.jobs.v1.CreateJobRequest")["required"] == ["project_id", "type", "params"]
    assert component(real, "aiorch.jobs.v1.JobParams")["maxProperties"] == 1
    assert component(real, "aiorch.jobs.v1.File")["properties"]["size"]["type"] == "string"


def test_raw_uploads_and_downloads_are_binary(real: dict[str, Any]) -> None:
    upload = real["paths"]["/api/files/"]["post"]
    download = real["paths"]["/api/job-results/{id}/download/"]["get"]
    assert upload["requestBody"]["content"]["application/octet-stream"]["schema"]["format"] == "binary"
    assert [p["name"] for p in upload["parameters"]] == ["filename"]
    assert download["responses"]["200"]["content"]["*/*"]["schema"]["format"] == "binary"
    assert [p["name"] for p in download["parameters"]] == ["id", "file"]
