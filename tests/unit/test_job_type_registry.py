"""The job-type registry agrees with the protos, the engines, the CLI, the NATS topology and the settings."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiorch.jobs.v1 import types_pb2
from typer.testing import CliRunner

from services.cli.client import jobs as cli_jobs
from services.cli.client import submit as cli_submit
from services.common import job_params_proto, job_types, messaging, nats_permissions, queues
from services.common.config import WorkerSettings
from services.common.job_params import (
    AiStoriesParams,
    DubbingParams,
    JobParams,
    SttParams,
    TtsParams,
    VoiceCloningParams,
)
from services.workers.engines.base import BadInput
from services.workers.engines.registry import create_engine
from services.workers.engines.stories import TalkingHead
from tests.engine_context import RecordingContext

SERVER = "http://127.0.0.1:9"  # nothing listens there; nothing is sent
# One parameters value per type with every field set, so a dropped field shows in the round trip.
FULL_PARAMS: dict[str, JobParams] = {
    job_types.STT.name: SttParams(language="de", formats=("srt", "txt"), model="tiny.en", task="translate"),
    job_types.TTS.name: TtsParams(text="hello", language="en", voice="f3", rate=200, pitch=60, format="ogg"),
    job_types.VOICE_CLONING.name: VoiceCloningParams(text="hello", language="es", format="mp3"),
    job_types.DUBBING.name: DubbingParams(source_language="en", target_language="es", voice="m3", original_volume=0.5),
    job_types.AI_STORIES.name: AiStoriesParams(script="hello", language="fr", voice="m1", fps=30),
}


def test_every_job_type_of_the_proto_has_one_entry_in_enum_order() -> None:
    proto_types = [(name, number) for name, number in types_pb2.JobType.items() if number]

    assert [(spec.name, spec.number) for spec in job_types.JOB_TYPES] == proto_types
    assert tuple(name for name, _ in proto_types) == job_types.NAMES


def test_every_job_type_carries_its_parameters_in_the_jobparams_member_of_its_name() -> None:
    members = [field.name for field in types_pb2.JobParams.DESCRIPTOR.oneofs_by_name["params"].fields]

    assert [spec.params_field for spec in job_types.JOB_TYPES] == members
    for spec in job_types.JOB_TYPES:
        assert job_types.by_params_field(spec.params_field) is spec
        assert job_types.by_number(spec.number) is spec
        assert job_types.get(f" {spec.name.lower()} ") is spec


def test_unknown_names_numbers_and_fields_are_refused_with_the_valid_names() -> None:
    with pytest.raises(job_types.UnknownJobType, match="unknown job type 'ocr'; choose from STT, TTS"):
        job_types.get("ocr")
    with pytest.raises(job_types.UnknownJobType):
        job_types.by_number(types_pb2.JOB_TYPE_UNSPECIFIED)
    with pytest.raises(job_types.UnknownJobType):
        job_types.by_params_field("ocr")
    with pytest.raises(job_types.UnknownJobType, match="no job types given"):
        job_types.parse_names(" , ")


def test_a_type_list_is_parsed_in_any_case_without_duplicates() -> None:
    assert job_types.parse_names("tts, Stt,TTS") == [job_types.TTS.name, job_types.STT.name]


@pytest.mark.parametrize("spec", job_types.JOB_TYPES, ids=job_types.NAMES)
def test_parameters_survive_the_round_trip_through_protobuf(spec: job_types.JobTypeSpec) -> None:
    params = FULL_PARAMS[spec.name]

    message = job_params_proto.to_proto(params)

    assert message.WhichOneof("params") == spec.params_field
    assert job_params_proto.job_type_of(message) is spec
    assert job_params_proto.job_type_for(params) is spec
    assert job_params_proto.from_proto(message) == params
    assert job_params_proto.to_proto(job_params_proto.from_proto(message) or params) == message


@pytest.mark.parametrize("spec", job_types.JOB_TYPES, ids=job_types.NAMES)
def test_a_job_without_parameters_gets_its_types_defaults(spec: job_types.JobTypeSpec) -> None:
    params = job_params_proto.params_for(spec, types_pb2.JobParams())

    assert job_params_proto.job_type_for(params) is spec
    assert params == type(FULL_PARAMS[spec.name])()


def test_parameters_of_another_type_are_refused() -> None:
    message = job_params_proto.to_proto(FULL_PARAMS[job_types.STT.name])

    with pytest.raises(ValueError, match="parameters for STT given to a TTS job"):
        job_params_proto.params_for(job_types.TTS, message)


def test_an_empty_message_carries_no_parameters() -> None:
    assert job_params_proto.from_proto(types_pb2.JobParams()) is None
    assert job_params_proto.job_type_of(types_pb2.JobParams()) is None


@pytest.mark.parametrize("spec", job_types.JOB_TYPES, ids=job_types.NAMES)
def test_every_job_type_has_an_engine_of_that_type(spec: job_types.JobTypeSpec) -> None:
    assert create_engine(spec.name).job_type == spec.name


@pytest.mark.parametrize(
    "spec", [s for s in job_types.JOB_TYPES if s.text_field], ids=[s.name for s in job_types.JOB_TYPES if s.text_field]
)
def test_each_engine_refuses_text_over_its_types_registry_limit(spec: job_types.JobTypeSpec, tmp_path: Path) -> None:
    assert spec.max_text_chars is not None
    too_long = "a" * (spec.max_text_chars + 1)
    assert spec.text_field is not None
    changes: dict[str, Any] = {spec.text_field: too_long}
    params = dataclasses.replace(FULL_PARAMS[spec.name], **changes)

    with pytest.raises(BadInput, match=f"longer than {spec.max_text_chars} characters"):
        create_engine(spec.name).run(params, [], RecordingContext(tmp_path))


def test_every_job_type_has_a_cli_submit_command() -> None:
    submit_commands = {command.name for command in cli_submit.app.registered_commands}

    assert submit_commands == {spec.name.lower().replace("_", "-") for spec in job_types.JOB_TYPES}


def test_the_cli_list_filter_takes_exactly_the_registrys_types(tmp_path: Path) -> None:
    runner = CliRunner()
    # No session is stored under this HOME: a type that parses ends at "not logged in", not at a usage error.
    env = {"HOME": str(tmp_path)}
    for spec in job_types.JOB_TYPES:
        accepted = runner.invoke(cli_jobs.app, ["list", "--type", spec.name.lower(), "--server", SERVER], env=env)
        assert "not logged in" in accepted.output, spec.name
    refused = runner.invoke(cli_jobs.app, ["list", "--type", "ocr", "--server", SERVER], env=env)
    assert refused.exit_code == 2
    assert "unknown job type 'ocr'" in " ".join(refused.output.split())


def test_every_job_type_has_a_queue_that_the_workers_may_consume() -> None:
    workers = nats_permissions.permissions("workers").publish

    assert queues.JOB_TYPES == job_types.NAMES
    assert len({messaging.dispatch_subject(name) for name in job_types.NAMES}) == len(job_types.NAMES)
    for name in job_types.NAMES:
        durable = messaging.worker_consumer(name)
        assert f"$JS.API.CONSUMER.MSG.NEXT.{messaging.DISPATCH_STREAM}.{durable}" in workers


def test_a_worker_takes_every_job_type_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIORCH_WORKER_TYPES", raising=False)

    assert job_types.parse_names(WorkerSettings().worker_types) == list(job_types.NAMES)


def _portrait(tmp_path: Path, side: int) -> Path:
    path = tmp_path / "portrait.png"
    assert cv2.imwrite(str(path), np.full((side, side, 3), 128, dtype=np.uint8))
    return path


def test_the_pixel_setting_drives_the_stories_engines_own_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIORCH_WORKER_INPUT_MAX_PIXELS", "4096")
    portrait = _portrait(tmp_path, 100)

    with pytest.raises(BadInput, match="has 10000 pixels; the limit is 4096"):
        TalkingHead().run(AiStoriesParams(script="Hello."), [portrait], RecordingContext(tmp_path))


_DECODE_AFTER_LIMIT = """
import sys
from services.common.config import WorkerSettings
from services.workers.main import limit_opencv_image_pixels
limit_opencv_image_pixels(WorkerSettings().worker_input_max_pixels)
import cv2, numpy as np
try:
    image = cv2.imdecode(np.fromfile(sys.argv[1], dtype=np.uint8), cv2.IMREAD_COLOR)
except cv2.error:
    image = None
print("decoded" if image is not None else "refused")
"""


@pytest.mark.parametrize(("max_pixels", "outcome"), [(4096, "refused"), (1_000_000, "decoded")])
def test_the_pixel_setting_drives_opencvs_own_limit(tmp_path: Path, max_pixels: int, outcome: str) -> None:
    # A fresh interpreter: OpenCV reads its limit once, when it is first imported.
    env = {**os.environ, "AIORCH_WORKER_INPUT_MAX_PIXELS": str(max_pixels)}
    env.pop("OPENCV_IO_MAX_IMAGE_PIXELS", None)
    done = subprocess.run(
        [sys.executable, "-c", _DECODE_AFTER_LIMIT, str(_portrait(tmp_path, 100))],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )

    assert done.stdout.strip() == outcome
