"""Files: size limits while streaming, path traversal in names, media that is not what it claims, bombs.

The bombs are small files whose headers promise an enormous decode (a PNG of 50,000 x 50,000 pixels,
a WAV that claims ten hours): they are refused from the header, before any engine decodes them.
"""

from __future__ import annotations

import io
import struct
import subprocess
import time
import wave
import zlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import imageio_ffmpeg
import pytest
from aiorch.jobs.v1 import files_pb2, files_pb2_grpc
from PIL import Image

from services.devstack.stack import LocalStack
from services.jobs.files import check_claim, safe_filename
from services.workers.engines.base import BadInput
from services.workers.input_limits import InputLimits, check_media_limits
from tests.figures import Figures
from tests.support import Accounts, User, file_job, make_project, upload, wait_for

MIB = 1024 * 1024
UPLOAD_LIMIT = 5 * MIB  # AIORCH_MAX_UPLOAD_BYTES in tests/conftest.py
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 200


def png(width: int, height: int, claimed: tuple[int, int] | None = None) -> bytes:
    """A real PNG of width x height, whose header may then claim other dimensions (CRC fixed)."""
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    if claimed is not None:
        # IHDR is the first chunk: length(4) type(4) at offset 8, then width and height.
        data[16:24] = struct.pack(">II", *claimed)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def wav(seconds: float, rate: int = 16000) -> bytes:
    """A silent mono 16-bit WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def matroska_claiming(seconds: float) -> bytes:
    """One second of silence in Matroska whose header (Segment Info Duration) claims `seconds`."""
    done = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-nostdin", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"),
            *("-t", "1", "-c:a", "pcm_s16le", "-f", "matroska", "-"),
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    data = bytearray(done.stdout)
    # The Duration element: id 0x4489, size 8 (0x88), a big-endian float64 of milliseconds.
    at = data.index(b"\x44\x89\x88")
    data[at + 3 : at + 11] = struct.pack(">d", seconds * 1000.0)
    return bytes(data)


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _refusal_ms(job_type: str, path: Path, limits: InputLimits) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(BadInput) as refused:
        check_media_limits(job_type, [path], limits)
    return str(refused.value), (time.perf_counter() - started) * 1000


# --- Bombs, refused from the header (unit: no stack needed) ---


def test_a_png_claiming_fifty_thousand_pixels_square_is_refused_from_its_header(
    tmp_path: Path, figures: Figures
) -> None:
    bomb = _write(tmp_path, "bomb.png", png(8, 8, claimed=(50_000, 50_000)))
    reason, took = _refusal_ms("AI_STORIES", bomb, InputLimits())
    assert "image size limit" in reason
    figures.add(f"PNG of {bomb.stat().st_size} bytes claiming 50000x50000 px refused in {took:.1f} ms")


def test_an_image_over_the_pixel_limit_is_refused_with_its_size(tmp_path: Path) -> None:
    big = _write(tmp_path, "big.png", png(8, 8, claimed=(8000, 6000)))
    reason, _ = _refusal_ms("AI_STORIES", big, InputLimits(max_pixels=40_000_000))
    assert "48 megapixels; the limit is 40" in reason
    check_media_limits("AI_STORIES", [_write(tmp_path, "ok.png", png(64, 64))], InputLimits())


def test_a_file_claiming_ten_hours_is_refused_from_its_header(tmp_path: Path, figures: Figures) -> None:
    bomb = _write(tmp_path, "bomb.mka", matroska_claiming(10 * 3600))
    reason, took = _refusal_ms("STT", bomb, InputLimits(max_seconds=4 * 3600))
    assert "lasts 36000 s" in reason
    figures.add(f"Matroska of {bomb.stat().st_size} bytes claiming 10 h refused in {took:.0f} ms (limit 4 h)")


def test_the_duration_limit_is_per_job_type(tmp_path: Path) -> None:
    clip = _write(tmp_path, "clip.wav", wav(3.0))
    limits = InputLimits(max_seconds=60, max_seconds_by_type={"VOICE_CLONING": 2})
    reason, _ = _refusal_ms("VOICE_CLONING", clip, limits)
    assert "at most 2 s" in reason
    check_media_limits("STT", [clip], limits)


def test_an_image_job_refuses_a_file_that_is_no_image(tmp_path: Path) -> None:
    reason, _ = _refusal_ms("AI_STORIES", _write(tmp_path, "x.png", ELF), InputLimits())
    assert "not a readable image" in reason


# --- Names and claimed types (unit) ---


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("..", "upload"),
        ("/", "upload"),
        (".hidden", "hidden"),
        ("a\x00b.wav", "a_b.wav"),
        ("x" * 1000, "x" * 255),
        ("song; rm -rf ~.wav", "song_ rm -rf _.wav"),
    ],
)
def test_file_names_never_carry_a_path(name: str, stored: str) -> None:
    assert safe_filename(name) == stored


def test_content_of_another_media_kind_than_claimed_is_refused() -> None:
    from services.common.errors import InvalidArgument  # noqa: PLC0415

    with pytest.raises(InvalidArgument, match="claims to be audio/wav but its content is image/png"):
        check_claim("audio/wav", "image/png")


# --- Through the real stack ---


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    block = b"\x00" * size
    for _ in range(total // size):
        yield block


def _oversized_upload(http: httpx.Client, editor: User, sent: int) -> int:
    """POST `sent` bytes of "audio"; the status, or 0 when the gateway closed the connection mid-body."""
    try:
        reply = http.post(
            "/api/files/",
            params={"filename": "huge.wav"},
            content=_chunks(sent),
            headers={**editor.headers, "content-type": "audio/wav"},
            timeout=60,
        )
    except httpx.TransportError:
        return 0  # closed while the client still sent: also a refusal
    return reply.status_code


def test_an_upload_over_the_limit_is_cut_off_without_being_held_in_memory(
    http: httpx.Client, accounts: Accounts, local_stack: LocalStack, figures: Figures
) -> None:
    editor = accounts.create("editor")
    pid = local_stack.supervisor.process("jobs").pid
    sent, rounds = 40 * MIB, 3
    # The first large upload warms buffers and the allocator; the next ones show what uploads hold.
    first = _oversized_upload(http, editor, sent)
    assert first == 0 or 400 <= first < 500, first
    before = _rss_kib(pid)
    started = time.monotonic()
    statuses = [_oversized_upload(http, editor, sent) for _ in range(rounds)]
    took = (time.monotonic() - started) / rounds
    grown = (_rss_kib(pid) - before) / 1024
    assert all(status == 0 or 400 <= status < 500 for status in statuses), statuses
    # Holding the bodies would take 120 MiB. What remains is HTTP/2 flow-control buffering of a few MiB plus
    # the allocator's slack, which reached 34 MiB with another process loading a core: the bound is half the
    # bodies, well clear of both.
    assert grown < rounds * sent / MIB / 2, f"the jobs service grew by {grown:.1f} MiB"
    answer = statuses[-1] or "connection closed"
    figures.add(
        f"REST uploads of {sent // MIB} MiB over a {UPLOAD_LIMIT // MIB} MiB limit: answer {answer} after {took:.1f} s"
        f" each; jobs service RSS grew {grown:.1f} MiB over {rounds} uploads ({rounds * sent // MIB} MiB sent)"
    )


def test_a_grpc_upload_over_the_limit_is_refused(stack_channel_jobs: grpc.Channel, accounts: Accounts) -> None:
    editor = accounts.create("editor")

    def messages() -> Iterator[files_pb2.UploadFileRequest]:
        yield files_pb2.UploadFileRequest(
            header=files_pb2.UploadFileHeader(filename="big.wav", content_type="audio/wav")
        )
        for block in _chunks(UPLOAD_LIMIT + 2 * MIB, 512 * 1024):
            yield files_pb2.UploadFileRequest(chunk=block)

    with pytest.raises(grpc.RpcError) as refused:
        files_pb2_grpc.FileServiceStub(stack_channel_jobs).UploadFile(messages(), metadata=editor.metadata, timeout=30)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "larger than the limit" in (refused.value.details() or "")


@pytest.fixture(scope="module")
def stack_channel_jobs(local_stack: LocalStack) -> Iterator[grpc.Channel]:
    """A channel straight to the jobs service."""
    assert local_stack.endpoints is not None
    with grpc.insecure_channel(local_stack.endpoints.grpc["jobs"]) as channel:
        yield channel


def test_a_traversal_file_name_is_stored_as_its_last_part(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    reply = upload(http, editor, "../../../../etc/cron.d/evil.wav", wav(0.5), "audio/wav")
    assert reply.status_code == 200, reply.text
    assert reply.json()["filename"] == "evil.wav"


def test_media_that_is_not_what_it_claims_is_refused(http: httpx.Client, accounts: Accounts, figures: Figures) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)["id"]
    # An image sent as audio is refused at the upload.
    disguised = upload(http, editor, "song.wav", png(32, 32), "audio/wav")
    assert disguised.status_code == 400
    assert "its content is image/png" in disguised.json()["message"]
    # A program sent as audio is stored as what it is, and no audio job takes it.
    program = upload(http, editor, "song.wav", ELF, "audio/wav")
    assert program.status_code == 200, program.text
    assert not program.json()["content_type"].startswith("audio/")
    job = file_job(http, editor, project, "STT", {"stt": {}}, program.json()["id"])
    assert job.status_code == 400
    assert "STT needs audio or video" in job.json()["message"]
    figures.add("PNG claiming audio/wav: 400 at upload; ELF claiming audio/wav: stored as non-audio, 400 at job create")


@pytest.mark.parametrize(
    ("job_type", "params", "filename", "content", "content_type", "reason"),
    [
        ("STT", {"stt": {}}, "long.mka", matroska_claiming(10 * 3600), "video/x-matroska", "lasts 36000 s"),
        (
            "AI_STORIES",
            {"ai_stories": {"script": "Hello."}},
            "huge.png",
            png(8, 8, claimed=(50_000, 50_000)),
            "image/png",
            "image size limit",
        ),
    ],
    ids=["duration-bomb", "dimension-bomb"],
)
def test_a_bomb_input_fails_its_job_before_any_engine_decodes_it(
    job_type: str,
    params: dict[str, object],
    filename: str,
    content: bytes,
    content_type: str,
    reason: str,
    http: httpx.Client,
    accounts: Accounts,
    figures: Figures,
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)["id"]
    stored = upload(http, editor, filename, content, content_type)
    assert stored.status_code == 200, stored.text
    created = file_job(http, editor, project, job_type, params, stored.json()["id"])
    assert created.status_code == 200, created.text
    started = time.monotonic()
    job = wait_for(http, editor, created.json()["id"], {"FAILED", "COMPLETED"}, timeout=60)
    assert job["status"] == "FAILED"
    assert reason in job["error"]
    assert job["attempts"] == 1  # bad input: never retried
    figures.add(f"{job_type} job on a {len(content)}-byte bomb: FAILED in {time.monotonic() - started:.1f} s")
