"""Generate Python stubs, mypy stubs and Envoy's descriptor set from protos/.

Also lays out a buf workspace (our protos plus the google.api protos they import)
so `buf lint` runs offline without a buf.build dependency.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import google.api.annotations_pb2
import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
# google.api is a namespace package: locate its .proto files through a module inside it.
GOOGLEAPIS = Path(google.api.annotations_pb2.__file__).resolve().parent.parent.parent
WELL_KNOWN = Path(grpc_tools.__file__).resolve().parent / "_proto"
# Envoy renders error details (e.g. RetryInfo) into JSON only for types it knows.
EXTRA_DESCRIPTOR_INPUTS = ["google/rpc/status.proto", "google/rpc/error_details.proto"]
GOOGLE_API_FOR_BUF = ["annotations.proto", "field_behavior.proto", "http.proto", "httpbody.proto"]


def _our_protos() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    includes = [f"-I{PROTOS}", f"-I{GOOGLEAPIS}", f"-I{WELL_KNOWN}"]
    code = protoc.main(["protoc", *includes, *args])
    if code != 0:
        sys.exit(f"protoc failed with exit code {code}")


def generate(out: Path, descriptor: Path) -> None:
    """Write *_pb2.py, *_pb2_grpc.py and their .pyi stubs, and the descriptor set."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    protos = _our_protos()
    # The mypy-protobuf plugins live beside this interpreter, which need not be on PATH.
    bin_dir = Path(sys.executable).parent
    _protoc(
        [
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            *protos,
        ]
    )
    for folder in [out / "aiorch", *(p for p in (out / "aiorch").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (out / "aiorch" / "py.typed").touch()
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    _protoc(
        [
            f"--descriptor_set_out={descriptor}",
            "--include_imports",
            "--include_source_info",
            *protos,
            *EXTRA_DESCRIPTOR_INPUTS,
        ]
    )


def buf_workspace(target: Path) -> None:
    """Copy our protos and the google.api protos they import into one buf workspace."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(PROTOS, target)
    google_api = target / "google" / "api"
    google_api.mkdir(parents=True)
    for name in GOOGLE_API_FOR_BUF:
        shutil.copy(GOOGLEAPIS / "google" / "api" / name, google_api / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="folder for the Python stubs")
    parser.add_argument("--descriptor", type=Path, help="descriptor set file for Envoy")
    parser.add_argument("--buf-workspace", type=Path, help="lay out a buf workspace here instead")
    args = parser.parse_args()
    if args.buf_workspace:
        buf_workspace(args.buf_workspace)
        return
    if not args.out or not args.descriptor:
        parser.error("--out and --descriptor are required")
    generate(args.out, args.descriptor)


if __name__ == "__main__":
    main()
