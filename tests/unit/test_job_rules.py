"""The job state machine, input kinds, file names and parameter checks, without a network."""

from __future__ import annotations

import pytest

from services.common import job_types
from services.common.errors import InvalidArgument
from services.common.job_params import AiStoriesParams, DubbingParams, TtsParams, VoiceCloningParams
from services.jobs.files import check_claim, safe_filename
from services.jobs.input_media import check_input_kind, sniff
from services.jobs.job_rules import check_input_url, check_inputs, check_params, job_type
from services.jobs.lifecycle import EventFacts, EventKind, JobFacts, JobState, judge, may_cancel, may_retry
from services.workers.engines.registry import create_engine, parse_engine_overrides

RUNNING = JobFacts(JobState.RUNNING, attempt=1, progress=40, last_delivery=1, last_sequence=5)


def event(kind: EventKind, *, attempt: int = 1, delivery: int = 1, sequence: int = 6, percent: int = 0) -> EventFacts:
    return EventFacts(kind, attempt, delivery, sequence, percent)


class TestJudge:
    def test_started_moves_a_pending_job_to_running(self) -> None:
        pending = JobFacts(JobState.PENDING, 1, 0, 0, 0)
        verdict = judge(pending, event(EventKind.STARTED, sequence=1))
        assert verdict.apply
        assert verdict.status is JobState.RUNNING
        assert verdict.new_delivery

    def test_progress_never_goes_down(self) -> None:
        assert judge(RUNNING, event(EventKind.PROGRESS, percent=10)).progress == 40
        assert judge(RUNNING, event(EventKind.PROGRESS, percent=70)).progress == 70

    def test_a_repeated_sequence_is_ignored(self) -> None:
        assert not judge(RUNNING, event(EventKind.PROGRESS, sequence=5, percent=90)).apply

    def test_events_of_an_older_delivery_are_ignored(self) -> None:
        facts = JobFacts(JobState.RUNNING, 1, 40, last_delivery=2, last_sequence=1)
        assert not judge(facts, event(EventKind.COMPLETED, delivery=1, sequence=99)).apply

    def test_a_new_delivery_starts_its_own_sequence(self) -> None:
        verdict = judge(RUNNING, event(EventKind.STARTED, delivery=2, sequence=1))
        assert verdict.apply
        assert verdict.new_delivery

    def test_events_of_another_attempt_are_ignored(self) -> None:
        assert not judge(RUNNING, event(EventKind.COMPLETED, attempt=2)).apply

    @pytest.mark.parametrize("final", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
    def test_a_final_job_never_moves(self, final: JobState) -> None:
        facts = JobFacts(final, 1, 100, 1, 5)
        for kind in EventKind:
            assert not judge(facts, event(kind, sequence=50)).apply

    def test_completion_sets_full_progress(self) -> None:
        verdict = judge(RUNNING, event(EventKind.COMPLETED))
        assert (verdict.status, verdict.progress) == (JobState.COMPLETED, 100)

    def test_cancel_and_retry_rules(self) -> None:
        assert may_cancel(JobState.PENDING) and may_cancel(JobState.RUNNING)
        assert not may_cancel(JobState.COMPLETED)
        assert may_retry(JobState.FAILED) and may_retry(JobState.CANCELLED)
        assert not may_retry(JobState.RUNNING) and not may_retry(JobState.COMPLETED)


WAV_HEAD = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 300
PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300


class TestMedia:
    def test_sniffing_reads_content_not_names(self) -> None:
        assert sniff(WAV_HEAD).startswith("audio/")
        assert sniff(PNG_HEAD) == "image/png"
        assert sniff(b"just some text") == "application/octet-stream"

    def test_input_kinds_fit_the_job_type(self) -> None:
        check_input_kind(job_types.STT, "audio/x-wav", "a.wav")
        check_input_kind(job_types.DUBBING, "video/mp4", "a.mp4")
        check_input_kind(job_types.AI_STORIES, "image/png", "face.png")
        with pytest.raises(InvalidArgument, match="STT needs audio or video"):
            check_input_kind(job_types.STT, "image/png", "face.png")
        with pytest.raises(InvalidArgument, match="AI_STORIES needs an image"):
            check_input_kind(job_types.AI_STORIES, "audio/x-wav", "a.wav")

    def test_a_file_that_is_not_what_it_claims_is_refused(self) -> None:
        with pytest.raises(InvalidArgument, match="claims to be audio/wav"):
            check_claim("audio/wav", "image/png")
        check_claim("application/octet-stream", "audio/x-wav")

    @pytest.mark.parametrize(
        ("given", "kept"),
        [("../../etc/passwd", "passwd"), ("C:\\x\\voice.wav", "voice.wav"), ("", "upload"), ("..", "upload")],
    )
    def test_file_names_lose_their_paths(self, given: str, kept: str) -> None:
        assert safe_filename(given) == kept


class TestParams:
    def test_params_must_match_the_type(self) -> None:
        params = TtsParams(text="hello")
        assert check_params(job_types.TTS, params) is params
        with pytest.raises(InvalidArgument, match="params are for TTS but the job type is STT"):
            check_params(job_types.STT, params)

    def test_missing_params_and_empty_text_are_refused(self) -> None:
        with pytest.raises(InvalidArgument, match="must hold the tts parameters"):
            check_params(job_types.TTS, None)
        with pytest.raises(InvalidArgument, match="empty"):
            check_params(job_types.TTS, TtsParams(text="   "))

    def test_dubbing_needs_a_target_and_a_volume_in_range(self) -> None:
        with pytest.raises(InvalidArgument, match="target_language"):
            check_params(job_types.DUBBING, DubbingParams())
        with pytest.raises(InvalidArgument, match="original_volume"):
            check_params(job_types.DUBBING, DubbingParams(target_language="es", original_volume=1.5))

    def test_types_with_an_input_need_exactly_one(self) -> None:
        check_inputs(job_types.STT, "file-id", "")
        check_inputs(job_types.TTS, "", "")
        with pytest.raises(InvalidArgument, match="exactly one"):
            check_inputs(job_types.STT, "file-id", "https://example.com/a.wav")
        with pytest.raises(InvalidArgument, match="takes no input"):
            check_inputs(job_types.TTS, "file-id", "")

    def test_unknown_types_name_the_valid_ones(self) -> None:
        assert job_type("tts") is job_types.TTS
        with pytest.raises(InvalidArgument, match="STT, TTS"):
            job_type("SING")

    @pytest.mark.parametrize("url", ["ftp://x/a.wav", "file:///etc/passwd", "http://", "javascript:alert(1)"])
    def test_input_urls_must_be_http(self, url: str) -> None:
        with pytest.raises(InvalidArgument):
            check_input_url(url)


def test_texts_longer_than_their_engine_takes_are_refused_at_create() -> None:
    check_params(job_types.VOICE_CLONING, VoiceCloningParams(text="a" * 5000))
    with pytest.raises(InvalidArgument, match="longer than 5000"):
        check_params(job_types.VOICE_CLONING, VoiceCloningParams(text="a" * 5001))
    with pytest.raises(InvalidArgument, match="longer than 10000"):
        check_params(job_types.AI_STORIES, AiStoriesParams(script="a" * 10_001))


def test_engine_overrides_name_a_type_and_a_class() -> None:
    overrides = parse_engine_overrides("tts = services.workers.engines.tts:TextToSpeech")
    assert overrides == {"TTS": "services.workers.engines.tts:TextToSpeech"}
    assert create_engine("TTS", overrides).job_type == "TTS"
    with pytest.raises(ValueError, match="unknown job type"):
        parse_engine_overrides("OCR=x:Y")
    with pytest.raises(ValueError, match="cannot load the TTS engine"):
        create_engine("TTS", {"TTS": "no.such.module:Engine"})
