"""The OpenAI-compatible audio API, driven by the official `openai` package unchanged (only base_url and
api_key set), against the real stack: every endpoint and response format, errors in OpenAI's shape, and the
job-create extras of the same HTTP edge (`Prefer: wait`, multipart forms)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.audio import TranscriptionVerbose

from services.devstack.stack import Endpoints
from tests.real_speech import alsa_speech, spoken_text
from tests.support import Accounts, User, make_project, upload, wait_for
from tests.word_error_rate import word_error_rate

# One low temperature, no fallback: Whisper's default (0, then sampling up to 1.0 when a decode fails its checks)
# may hear a window differently from one run to the next.
DETERMINISTIC = 0.01


@pytest.fixture(scope="module")
def key_owner(http: httpx.Client, accounts: Accounts) -> tuple[User, str]:
    """An editor and an API key of theirs."""
    editor = accounts.create("editor")
    reply = http.post("/api/keys/", json={"name": "openai client"}, headers=editor.headers)
    assert reply.status_code == 200, reply.text
    return editor, str(reply.json()["secret"])


@pytest.fixture(scope="module")
def client(stack: Endpoints, key_owner: tuple[User, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key=key_owner[1], max_retries=0, timeout=300) as c:
        yield c


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return alsa_speech(tmp_path_factory.mktemp("speech") / "speakers.wav")


def test_models_and_voices_are_listed(client: openai.OpenAI, http: httpx.Client, key_owner: tuple[User, str]) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"whisper-1", "whisper-tiny.en", "tts-1", "tts-1-hd", "espeak-ng"} <= set(ids)
    assert client.models.retrieve("whisper-1").owned_by == "aiorch"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("dall-e-3")
    voices = http.get("/v1/audio/voices", headers={"authorization": f"Bearer {key_owner[1]}"}).json()
    assert {"joe", "kumo"} <= {v["id"] for v in voices["data"]}


def test_a_real_recording_is_transcribed_as_the_stt_job_hears_it(
    client: openai.OpenAI, http: httpx.Client, key_owner: tuple[User, str], recording: Path
) -> None:
    with recording.open("rb") as audio:
        heard = client.audio.transcriptions.create(
            model="whisper-tiny.en", file=audio, language="en", temperature=DETERMINISTIC
        )
    assert word_error_rate(spoken_text(), heard.text) <= 0.1, heard.text
    # The same file as an STT job of the REST API says the same.
    editor = key_owner[0]
    project = make_project(http, editor)
    file_id = upload(http, editor, "speakers.wav", recording.read_bytes(), "audio/wav").json()["id"]
    job = http.post(
        "/api/jobs/",
        json={
            "project_id": project["id"],
            "type": "STT",
            "params": {"stt": {"language": "en", "model": "tiny.en", "temperature": DETERMINISTIC}},
            "input_file_id": file_id,
        },
        headers=editor.headers,
    ).json()
    done = wait_for(http, editor, job["id"], {"COMPLETED"}, timeout=300)
    result = http.get(f"/api/jobs/{done['id']}/result/", headers=editor.headers).json()
    assert heard.text == result["meta"]["text"]
    # And the call was a job too, in the key owner's default project.
    projects = http.get("/api/projects/", params={"search": "default"}, headers=editor.headers).json()["projects"]
    default = next(p for p in projects if p["name"] == "default")
    listed = http.get("/api/jobs/", params={"project_id": default["id"]}, headers=editor.headers).json()["jobs"]
    assert [(j["type"], j["status"], j["name"]) for j in listed] == [("STT", "COMPLETED", "OpenAI API transcribe")]


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt", "verbose_json"])
def test_every_transcript_format(client: openai.OpenAI, recording: Path, response_format: Any) -> None:
    with recording.open("rb") as audio:
        answer = client.audio.transcriptions.create(
            # tiny.en: the formats are what is tested, and it is the fastest model.
            model="whisper-tiny.en",
            file=audio,
            response_format=response_format,
            timestamp_granularities=["word", "segment"] if response_format == "verbose_json" else openai.omit,
            temperature=DETERMINISTIC,
            prompt="Front left, front center." if response_format == "text" else openai.omit,
        )
    if response_format == "verbose_json":
        assert isinstance(answer, TranscriptionVerbose)
        assert answer.segments and answer.words
        assert answer.duration > 5
        assert all(s.end > s.start for s in answer.segments)
        assert isinstance(answer.segments[0].avg_logprob, float)
        assert word_error_rate(spoken_text(), " ".join(w.word for w in answer.words)) <= 0.15
        return
    text = str(answer)
    if response_format == "srt":
        assert text.startswith("1\n") and " --> " in text
    elif response_format == "vtt":
        assert text.startswith("WEBVTT")
    assert "front" in text.lower()


def test_translation_answers_in_english(client: openai.OpenAI, recording: Path) -> None:
    with recording.open("rb") as audio:
        answer = client.audio.translations.create(model="whisper-1", file=audio, temperature=DETERMINISTIC)
    assert word_error_rate(spoken_text(), answer.text) <= 0.2, answer.text


MAGIC: dict[str, Callable[[bytes], bool]] = {
    "mp3": lambda b: b[:3] == b"ID3" or (b[0] == 0xFF and b[1] & 0xE0 == 0xE0),
    "wav": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WAVE",
    "flac": lambda b: b[:4] == b"fLaC",
    "opus": lambda b: b[:4] == b"OggS" and b"OpusHead" in b[:200],
    "aac": lambda b: b[0] == 0xFF and b[1] & 0xF0 == 0xF0,
    "pcm": lambda b: len(b) % 2 == 0,
}


@pytest.mark.parametrize("response_format", list(MAGIC))
def test_speech_in_every_format(client: openai.OpenAI, response_format: Any, tmp_path: Path) -> None:
    spoken = client.audio.speech.create(
        model="tts-1", voice="alloy", input="The museum opens early.", response_format=response_format
    )
    audio = spoken.read()
    assert len(audio) > 2000
    assert MAGIC[response_format](audio), audio[:16]
    if response_format == "pcm":
        # Raw 16-bit mono at 24 kHz, as OpenAI's API gives it: about a second and a half of speech.
        assert 0.8 < len(audio) / 2 / 24000 < 4
    else:
        probe = subprocess.run(
            [str(shutil.which("ffprobe") or _ffmpeg()), "-hide_banner", "-i", "-"],
            input=audio,
            capture_output=True,
            check=False,
        )
        assert b"Audio" in probe.stderr, probe.stderr[-400:]


def _ffmpeg() -> str:
    import imageio_ffmpeg  # noqa: PLC0415 - the engines' ffmpeg, also in the test venv

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def test_speech_is_heard_back_and_speed_and_voice_apply(client: openai.OpenAI, recording: Path, tmp_path: Path) -> None:
    text = "Visitors can walk through the old gardens before lunch."
    normal = client.audio.speech.create(model="tts-1", voice="echo", input=text, response_format="wav").read()
    fast = client.audio.speech.create(model="tts-1", voice="echo", input=text, response_format="wav", speed=1.5).read()
    assert len(fast) < 0.85 * len(normal)
    path = tmp_path / "speech.wav"
    path.write_bytes(normal)
    with path.open("rb") as audio:
        heard = client.audio.transcriptions.create(
            model="whisper-tiny.en", file=audio, language="en", temperature=DETERMINISTIC
        )
    assert word_error_rate(text, heard.text) <= 0.1, heard.text
    spanish = client.audio.speech.create(
        model="tts-1", voice="kumo", input="Hola a todos.", extra_body={"language": "es"}, response_format="wav"
    ).read()
    assert spanish[:4] == b"RIFF"


def test_errors_have_openais_shape(client: openai.OpenAI, stack: Endpoints, recording: Path) -> None:
    with pytest.raises(openai.BadRequestError) as bad_model:
        client.audio.speech.create(model="dall-e-3", voice="alloy", input="x")
    assert bad_model.value.status_code == 400
    assert bad_model.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="x", speed=9)
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="x", response_format="ogg-vorbis")  # type: ignore[arg-type]
    with recording.open("rb") as audio, pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="whisper-1", file=audio, temperature=3)
    with pytest.raises(openai.BadRequestError, match="needs audio or video"):
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"not audio at all " * 100))
    forged = "aio_0123456789abcdef_" + "x" * 43
    with (
        openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key=forged) as wrong,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        wrong.models.list()
    assert refused.value.body["type"] == "authentication_error"  # type: ignore[index]


def test_a_viewer_key_cannot_make_jobs(http: httpx.Client, accounts: Accounts, stack: Endpoints) -> None:
    viewer = accounts.create("viewer")
    secret = http.post("/api/keys/", json={"name": "v"}, headers=viewer.headers).json()["secret"]
    with openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key=secret, max_retries=0) as c:
        assert c.models.list().data
        with pytest.raises(openai.PermissionDeniedError):
            c.audio.speech.create(model="tts-1", voice="alloy", input="x")


def test_prefer_wait_returns_a_finished_tts_job_with_its_result(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    reply = http.post(
        "/api/jobs/",
        json={"project_id": project["id"], "type": "TTS", "params": {"tts": {"text": "Done in one call."}}},
        headers={**editor.headers, "prefer": "wait=60"},
        timeout=90,
    )
    assert reply.status_code == 200, reply.text
    job = reply.json()
    assert job["status"] == "COMPLETED"
    assert job["result"]["job_id"] == job["id"]
    assert reply.headers["preference-applied"] == "wait=60"
    audio = http.get(job["result"]["result_url"], headers=editor.headers)
    assert audio.content[:4] == b"RIFF"
    # The same JSON as the transcoded REST API gives for the job.
    plain = http.get(f"/api/jobs/{job['id']}/", headers=editor.headers).json()
    assert {k: v for k, v in job.items() if k != "result"} == plain


def test_a_multipart_create_takes_the_input_file_as_curl_sends_it(
    stack: Endpoints, http: httpx.Client, accounts: Accounts, recording: Path
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    done = subprocess.run(
        [
            "curl", "-sS", "-X", "POST", f"{stack.gateway_url}/api/jobs/",
            "-H", f"authorization: Bearer {editor.access}",
            "-H", "prefer: wait=120",
            "-F", f"project={project['id']}",
            "-F", "type=STT",
            "-F", 'params={"stt": {"language": "en", "model": "tiny.en"}}',
            "-F", f"input_file=@{recording}",
        ],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    job = json.loads(done.stdout)
    assert job["status"] == "COMPLETED", job
    assert job["input_file_id"]
    assert word_error_rate(spoken_text(), job["result"]["meta"]["text"]) <= 0.15
    bad = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{stack.gateway_url}/api/jobs/", "-H", f"authorization: Bearer {editor.access}",
         "-F", f"project={project['id']}", "-F", "type=STT", "-F", "params=not json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(bad.stdout)["code"] == 3
