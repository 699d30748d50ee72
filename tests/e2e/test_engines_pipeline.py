"""Every job type through the whole stack: upload the input, submit, wait, download and check the output."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import cv2
import httpx
import imageio_ffmpeg
import pytest
from skimage import data as samples

from services.workers.engines.toolkit.ffmpeg import media_info
from tests.support import Accounts, User, file_job, make_project, tts_job, upload, wait_for

ENGLISH = "The weather is nice today. We walk to the old market and buy fresh bread."


def upload_file(http: httpx.Client, user: User, path: Path, content_type: str) -> dict[str, Any]:
    reply = upload(http, user, path.name, path.read_bytes(), content_type)
    assert reply.status_code == 200, reply.text
    file: dict[str, Any] = reply.json()
    return file


def submit(
    http: httpx.Client, user: User, project_id: str, job_type: str, params: dict[str, Any], file_id: str
) -> dict[str, Any]:
    reply = file_job(http, user, project_id, job_type, params, file_id)
    assert reply.status_code == 200, reply.text
    done = wait_for(http, user, reply.json()["id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
    assert done["status"] == "COMPLETED", done["error"]
    return done


def download(http: httpx.Client, user: User, job: dict[str, Any], target: Path, file: str = "") -> dict[str, Any]:
    result: dict[str, Any] = http.get(f"/api/jobs/{job['id']}/result/", headers=user.headers).json()
    params = {"file": file} if file else {}
    reply = http.get(result["result_url"], params=params, headers=user.headers)
    assert reply.status_code == 200
    target.write_bytes(reply.content)
    return result


@pytest.fixture
def speech(http: httpx.Client, accounts: Accounts, tmp_path: Path) -> Path:
    """English speech made by the TTS engine through the stack."""
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = wait_for(http, editor, tts_job(http, editor, project["id"], ENGLISH)["id"], {"COMPLETED"})
    path = tmp_path / "speech.wav"
    download(http, editor, job, path)
    return path


def test_stt_transcribes_an_uploaded_recording(
    http: httpx.Client, accounts: Accounts, speech: Path, tmp_path: Path
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    file = upload_file(http, editor, speech, "audio/wav")
    job = submit(http, editor, project["id"], "STT", {"stt": {}}, file["id"])
    result = download(http, editor, job, tmp_path / "transcript.json")
    assert set(result["files"]) >= {"transcript.json", "transcript.txt", "transcript.srt", "transcript.vtt"}
    transcript = json.loads((tmp_path / "transcript.json").read_text())
    heard = set(re.findall(r"[a-z']+", transcript["text"].lower()))
    said = re.findall(r"[a-z']+", ENGLISH.lower())
    # Word-level recall through the whole stack; the engine's own WER is measured in its unit tests.
    assert sum(w in heard for w in said) / len(said) >= 0.6, transcript["text"]
    srt = http.get(result["result_url"], params={"file": "transcript.srt"}, headers=editor.headers)
    assert "-->" in srt.text


def test_voice_cloning_speaks_in_the_reference_voice(http: httpx.Client, accounts: Accounts, tmp_path: Path) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    reference_job = http.post(
        "/api/jobs/",
        json={
            "project_id": project["id"],
            "type": "TTS",
            "params": {"tts": {"text": "This is my own voice, please copy it well.", "pitch": 85, "voice": "espeak"}},
        },
        headers=editor.headers,
    ).json()
    reference = tmp_path / "reference.wav"
    download(http, editor, wait_for(http, editor, reference_job["id"], {"COMPLETED"}), reference)
    file = upload_file(http, editor, reference, "audio/wav")
    job = submit(
        http,
        editor,
        project["id"],
        "VOICE_CLONING",
        {"voice_cloning": {"text": "Good morning to everyone."}},
        file["id"],
    )
    cloned = tmp_path / "cloned.wav"
    download(http, editor, job, cloned)
    duration, has_audio, _ = media_info(cloned)
    assert has_audio and duration > 0.5


def _video_from(image: Path, audio: Path, target: Path) -> Path:
    inputs = ["-loop", "1", "-i", str(image), "-i", str(audio)]
    codecs = ["-c:v", "libx264", "-tune", "stillimage", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *inputs, *codecs, str(target)], check=True
    )
    return target


def test_dubbing_turns_an_english_video_into_a_spanish_one(
    http: httpx.Client, accounts: Accounts, speech: Path, tmp_path: Path
) -> None:
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), cv2.cvtColor(samples.coffee(), cv2.COLOR_RGB2BGR))
    video = _video_from(image, speech, tmp_path / "talk.mp4")
    editor = accounts.create("editor")
    project = make_project(http, editor)
    file = upload_file(http, editor, video, "video/mp4")
    assert file["content_type"] == "video/mp4"
    job = submit(http, editor, project["id"], "DUBBING", {"dubbing": {"target_language": "es"}}, file["id"])
    dubbed = tmp_path / "dubbed.mp4"
    result = download(http, editor, job, dubbed)
    assert "subtitles.srt" in result["files"]
    duration, has_audio, has_video = media_info(dubbed)
    assert has_audio and has_video
    assert abs(duration - media_info(video)[0]) / media_info(video)[0] < 0.02
    subtitles = http.get(result["result_url"], params={"file": "subtitles.srt"}, headers=editor.headers).text
    assert "-->" in subtitles
    assert any(word in subtitles.lower() for word in ("el ", "la ", "es ", "y ", "de "))


def test_ai_stories_animates_a_portrait(http: httpx.Client, accounts: Accounts, tmp_path: Path) -> None:
    portrait = tmp_path / "portrait.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(samples.astronaut(), cv2.COLOR_RGB2BGR))
    editor = accounts.create("editor")
    project = make_project(http, editor)
    file = upload_file(http, editor, portrait, "image/png")
    job = submit(
        http,
        editor,
        project["id"],
        "AI_STORIES",
        {"ai_stories": {"script": "Hello. I flew to space and back."}},
        file["id"],
    )
    story = tmp_path / "story.mp4"
    result = download(http, editor, job, story)
    assert result["meta"]["fps"] == 25
    duration, has_audio, has_video = media_info(story)
    assert has_audio and has_video and duration > 1.0


def test_an_image_without_a_face_fails_clearly(http: httpx.Client, accounts: Accounts, tmp_path: Path) -> None:
    picture = tmp_path / "coffee.png"
    cv2.imwrite(str(picture), cv2.cvtColor(samples.coffee(), cv2.COLOR_RGB2BGR))
    editor = accounts.create("editor")
    project = make_project(http, editor)
    file = upload_file(http, editor, picture, "image/png")
    reply = file_job(http, editor, project["id"], "AI_STORIES", {"ai_stories": {"script": "Hi."}}, file["id"])
    failed = wait_for(http, editor, reply.json()["id"], {"FAILED", "COMPLETED"}, timeout=60)
    assert failed["status"] == "FAILED"
    assert "no face" in failed["error"]
    assert failed["attempts"] == 1
