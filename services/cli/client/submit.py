"""`aiorch jobs submit <type>`: one command per job type, with that type's typed parameters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from services.cli.client.errors import CliError, ExitCode, reported
from services.cli.client.options import DEFAULT_SERVER, OutputOption, ServerOption
from services.cli.client.output import OutputFormat, print_record
from services.common.job_params import (
    AiStoriesParams,
    DubbingParams,
    JobParams,
    SttParams,
    TtsParams,
    VoiceCloningParams,
)

app = typer.Typer(help="Submit a job of one type (see each type's parameters).", no_args_is_help=True)

ProjectOption = Annotated[str, typer.Option("--project", "-p", help="Project id.", show_default=False)]
NameOption = Annotated[str, typer.Option(help="Short name.")]
DescriptionOption = Annotated[str, typer.Option(help="Free text.")]
RequestIdOption = Annotated[str, typer.Option(help="Idempotency key: submitting again with it returns the first job.")]
InputOption = Annotated[
    Path | None,
    typer.Option(
        "--input", exists=True, dir_okay=False, readable=True, help="Local input file to upload.", show_default=False
    ),
]
InputUrlOption = Annotated[str, typer.Option(help="Or an http(s) address the worker fetches the input from.")]
WatchOption = Annotated[bool, typer.Option("--watch", help="Follow the job until it ends (exit code as `jobs watch`).")]
TimeoutOption = Annotated[
    float, typer.Option(help="With --watch: give up after this many seconds (0: no limit).", show_default=False)
]
LanguageOption = Annotated[str, typer.Option(help="Language, e.g. en, es, fr, de (server default en).")]
VoiceOption = Annotated[str, typer.Option(help="Engine voice variant, e.g. m3, f3 (optional).")]
TtsVoiceOption = Annotated[
    str,
    typer.Option(
        help="Voice: joe (neural, English), kumo, alpha, gongitsune, nezumi, tebukuro (neural, es/fr/de/ca), espeak, "
        "or an espeak-ng variant such as m3 (optional; default: the language's neural voice, else espeak-ng)."
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="Output format: wav, mp3 or ogg (server default wav).")]


@dataclass(frozen=True)
class Submission:
    """What every job type's submit command shares."""

    project: str
    name: str
    description: str
    client_request_id: str
    input_file: Path | None
    input_url: str
    watch: bool
    timeout: float
    server: str
    output: OutputFormat


def _submit(submission: Submission, params: JobParams) -> None:
    """Create a job of the type that takes `params` (upload the input first), then print or watch it."""
    from aiorch.jobs.v1 import jobs_pb2  # noqa: PLC0415 - keeps `aiorch --help` fast

    from services.cli.client.session import Session  # noqa: PLC0415
    from services.cli.client.transfer import upload_input  # noqa: PLC0415
    from services.cli.client.watch import watch  # noqa: PLC0415
    from services.common import job_params_proto  # noqa: PLC0415

    with reported():
        if submission.input_file is not None and submission.input_url:
            raise CliError("give --input or --input-url, not both", ExitCode.USAGE)
        with Session.resume(submission.server) as session:
            file_id = upload_input(session, submission.input_file).id if submission.input_file else ""
            request = jobs_pb2.CreateJobRequest(
                project_id=submission.project,
                name=submission.name,
                description=submission.description,
                type=job_params_proto.job_type_for(params).number,
                params=job_params_proto.to_proto(params),
                input_file_id=file_id,
                input_url=submission.input_url,
                client_request_id=submission.client_request_id,
            )
            job = session.unary(session.jobs.CreateJob, request)
            if not submission.watch:
                print_record(job, submission.output)
                return
            raise typer.Exit(watch(session, job.id, submission.output, submission.timeout or None))


@app.command("stt")
def submit_stt(
    project: ProjectOption,
    input_file: InputOption = None,
    input_url: InputUrlOption = "",
    language: Annotated[
        str, typer.Option(help="Language of the speech, e.g. en, es, fr (default: detected, and reported).")
    ] = "",
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="Transcript formats besides JSON: txt, srt, vtt; repeat for more (default all)."),
    ] = None,
    model: Annotated[
        str, typer.Option(help="Speech model: base (99 languages, the default) or tiny.en (English only, fastest).")
    ] = "",
    translate: Annotated[
        bool, typer.Option("--translate", help="Write the transcript in English, whatever the speech's language.")
    ] = False,
    name: NameOption = "",
    description: DescriptionOption = "",
    client_request_id: RequestIdOption = "",
    watch: WatchOption = False,
    timeout: TimeoutOption = 0,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Speech to text of an audio or video input."""
    params = SttParams(
        language=language, formats=tuple(formats or ()), model=model, task="translate" if translate else ""
    )
    common = Submission(
        project, name, description, client_request_id, input_file, input_url, watch, timeout, server, output
    )
    _submit(common, params)


@app.command("tts")
def submit_tts(
    project: ProjectOption,
    text: Annotated[str, typer.Option(help="The text to speak.", show_default=False)],
    language: LanguageOption = "",
    voice: TtsVoiceOption = "",
    rate: Annotated[int, typer.Option(help="Words per minute, 80-450 (server default 175).", show_default=False)] = 0,
    pitch: Annotated[
        int, typer.Option(help="Pitch 1-100, espeak-ng voices only (server default 50).", show_default=False)
    ] = 0,
    audio_format: FormatOption = "",
    name: NameOption = "",
    description: DescriptionOption = "",
    client_request_id: RequestIdOption = "",
    watch: WatchOption = False,
    timeout: TimeoutOption = 0,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Text to speech (no input file)."""
    params = TtsParams(text=text, language=language, voice=voice, rate=rate, pitch=pitch, format=audio_format)
    common = Submission(project, name, description, client_request_id, None, "", watch, timeout, server, output)
    _submit(common, params)


@app.command("voice-cloning")
def submit_voice_cloning(
    project: ProjectOption,
    text: Annotated[str, typer.Option(help="The text to speak in the reference voice.", show_default=False)],
    input_file: InputOption = None,
    input_url: InputUrlOption = "",
    language: LanguageOption = "",
    audio_format: FormatOption = "",
    name: NameOption = "",
    description: DescriptionOption = "",
    client_request_id: RequestIdOption = "",
    watch: WatchOption = False,
    timeout: TimeoutOption = 0,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """The text spoken in the voice of the input recording (audio, at least 1 s of speech)."""
    params = VoiceCloningParams(text=text, language=language, format=audio_format)
    common = Submission(
        project, name, description, client_request_id, input_file, input_url, watch, timeout, server, output
    )
    _submit(common, params)


@app.command("dubbing")
def submit_dubbing(
    project: ProjectOption,
    target_language: Annotated[str, typer.Option(help="Language to dub into, e.g. es.", show_default=False)],
    input_file: InputOption = None,
    input_url: InputUrlOption = "",
    source_language: Annotated[str, typer.Option(help="Language spoken in the input (server default en).")] = "",
    voice: VoiceOption = "",
    original_volume: Annotated[
        float,
        typer.Option(
            help="Volume of the original under the new speech, 0.0-1.0 (server default 0.2).", show_default=False
        ),
    ] = 0.0,
    name: NameOption = "",
    description: DescriptionOption = "",
    client_request_id: RequestIdOption = "",
    watch: WatchOption = False,
    timeout: TimeoutOption = 0,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """A video or audio input translated and re-voiced."""
    params = DubbingParams(
        source_language=source_language, target_language=target_language, voice=voice, original_volume=original_volume
    )
    common = Submission(
        project, name, description, client_request_id, input_file, input_url, watch, timeout, server, output
    )
    _submit(common, params)


@app.command("ai-stories")
def submit_ai_stories(
    project: ProjectOption,
    script: Annotated[str, typer.Option(help="The script the portrait speaks.", show_default=False)],
    input_file: InputOption = None,
    input_url: InputUrlOption = "",
    language: LanguageOption = "",
    voice: VoiceOption = "",
    fps: Annotated[int, typer.Option(help="Frames per second, 10-60 (server default 25).", show_default=False)] = 0,
    name: NameOption = "",
    description: DescriptionOption = "",
    client_request_id: RequestIdOption = "",
    watch: WatchOption = False,
    timeout: TimeoutOption = 0,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """A talking-head video from a portrait image input and a script."""
    params = AiStoriesParams(script=script, language=language, voice=voice, fps=fps)
    common = Submission(
        project, name, description, client_request_id, input_file, input_url, watch, timeout, server, output
    )
    _submit(common, params)
