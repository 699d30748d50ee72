"""The dubbing engine: English speech in, Spanish speech in the same time slots and Spanish subtitles out."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from services.common.job_params import DubbingParams
from services.workers.engines.base import BadInput, Cancelled, EngineResult
from services.workers.engines.dubbing import MIX_RATE, ApertiumDubbing, fit_rate, mix, place, resample
from services.workers.engines.toolkit import ffmpeg
from services.workers.engines.toolkit.transcript import format_timestamp
from services.workers.engines.toolkit.translate import parse_modes, translate_lines
from tests.engine_context import RecordingContext
from tests.spoken_media import speech_wav, video_with_sound

SENTENCES = (
    "The house is very big.",
    "My brother lives in the city.",
    "We eat bread and fish every day.",
)
SPANISH_WORDS = {"el", "la", "los", "las", "de", "en", "y", "es", "un", "una", "mi", "muy", "cada", "casa", "día"}
CATALAN_WORDS = {"el", "la", "els", "les", "de", "del", "en", "i", "és", "un", "una", "meu", "molt", "cada", "casa"}
RATE = 16000  # the rate the checks listen at


def dub(tmp_path: Path, source: Path, **params: object) -> tuple[EngineResult, RecordingContext]:
    ctx = RecordingContext(Path(tempfile.mkdtemp(dir=tmp_path)))
    params.setdefault("target_language", "es")
    result = ApertiumDubbing().run(DubbingParams(**params), [source], ctx)  # type: ignore[arg-type]
    return result, ctx


def rms(samples: np.ndarray, start: float, end: float) -> float:
    window = samples[round(start * RATE) : round(end * RATE)]
    return float(np.sqrt(np.mean(np.square(window)))) if window.size else 0.0


def srt_cues(text: str) -> list[tuple[str, str]]:
    """(timing line, text) of each SubRip cue."""
    return [(block.split("\n")[1], " ".join(block.split("\n")[2:])) for block in text.strip().split("\n\n")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    return video_with_sound(folder / "clip.mp4", speech_wav(folder / "speech.wav", SENTENCES))


@pytest.fixture(scope="module")
def dubbed(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[EngineResult, RecordingContext]:
    return dub(tmp_path_factory.mktemp("dub"), clip)


def test_a_video_comes_back_as_a_video_of_the_same_length_with_sound(
    clip: Path, dubbed: tuple[EngineResult, RecordingContext]
) -> None:
    result, _ = dubbed
    source_duration, _, _ = ffmpeg.media_info(clip)

    duration, has_audio, has_video = ffmpeg.media_info(result.outputs[0])

    assert result.outputs[0].name == "dubbed.mp4"
    assert (has_audio, has_video) == (True, True)
    assert duration == pytest.approx(source_duration, rel=0.02)
    assert result.meta["format"] == "mp4"
    assert result.meta["duration_seconds"] == pytest.approx(source_duration, rel=0.02)


def test_new_speech_fills_each_original_segment_over_the_lowered_original(
    clip: Path, dubbed: tuple[EngineResult, RecordingContext]
) -> None:
    result, _ = dubbed
    original = ffmpeg.decode_audio(clip, RATE)
    output = ffmpeg.decode_audio(result.outputs[0], RATE)
    segments = result.meta["segments"]

    assert len(segments) >= 2
    for segment in segments:
        new = rms(output, segment["start"], segment["end"])
        lowered = 0.2 * rms(original, segment["start"], segment["end"])
        assert new > 2.5 * lowered, segment  # the lowered original alone would give a ratio of 1
    size = min(original.size, output.size)
    assert np.corrcoef(original[:size], output[:size])[0, 1] < 0.5  # not the original turned down


def test_subtitles_hold_the_apertium_translation_of_each_recognised_segment(
    dubbed: tuple[EngineResult, RecordingContext],
) -> None:
    result, _ = dubbed
    segments = result.meta["segments"]

    cues = srt_cues(result.outputs[1].read_text())

    expected = translate_lines([s["text"] for s in segments], "eng-spa")
    assert result.outputs[1].name == "subtitles.srt"
    assert [text for _, text in cues] == expected == [s["translation"] for s in segments]
    for segment, (timing, text) in zip(segments, cues, strict=True):
        assert timing == f"{format_timestamp(segment['start'], ',')} --> {format_timestamp(segment['end'], ',')}"
        assert text != segment["text"]
        assert SPANISH_WORDS & set(re.findall(r"\w+", text.lower())), text


def test_progress_reports_each_step_up_to_100(dubbed: tuple[EngineResult, RecordingContext]) -> None:
    result, ctx = dubbed

    assert ctx.percents[0] == 0
    assert ctx.percents[-1] == 100
    assert ctx.percents == sorted(ctx.percents)
    assert len(ctx.percents) >= 4 + len(result.meta["segments"])


def test_an_audio_input_comes_back_as_a_wav_of_the_same_length(tmp_path: Path) -> None:
    speech = speech_wav(tmp_path / "speech.wav", SENTENCES[:2])

    result, _ = dub(tmp_path, speech, original_volume=0.5)

    assert [p.name for p in result.outputs] == ["dubbed.wav", "subtitles.srt"]
    samples, rate = ffmpeg.read_wav(result.outputs[0])
    assert rate == MIX_RATE
    assert samples.size / rate == pytest.approx(ffmpeg.media_info(speech)[0], abs=0.01)
    assert result.meta["format"] == "wav"


def test_english_is_dubbed_into_catalan_with_catalan_subtitles(clip: Path, tmp_path: Path) -> None:
    result, _ = dub(tmp_path, clip, target_language="ca")

    cues = [text for _, text in srt_cues(result.outputs[1].read_text())]
    duration, _, _ = ffmpeg.media_info(result.outputs[0])
    assert result.meta["target_language"] == "ca"
    assert cues == translate_lines([s["text"] for s in result.meta["segments"]], "eng-cat")
    assert all(CATALAN_WORDS & set(re.findall(r"\w+", text.lower())) for text in cues), cues
    assert duration == pytest.approx(ffmpeg.media_info(clip)[0], rel=0.02)


def test_an_unsupported_pair_is_bad_input_listing_the_supported_ones(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"cannot translate en->de; supported pairs: .*en->es \(eng-spa\)"):
        dub(tmp_path, clip, target_language="de")


def test_a_missing_target_language_is_bad_input(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="target_language is required"):
        dub(tmp_path, clip, target_language="")


def test_without_apertium_dubbing_is_bad_input(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(BadInput, match="apertium is not installed"):
        dub(tmp_path, clip)


def test_an_original_volume_above_one_is_bad_input(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="original_volume"):
        dub(tmp_path, clip, original_volume=1.5)


def test_cancel_between_steps_stops_the_engine(clip: Path, tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, stop_after=1)

    with pytest.raises(Cancelled):
        ApertiumDubbing().run(DubbingParams(target_language="es"), [clip], ctx)

    assert ctx.percents == [0]
    assert list(tmp_path.iterdir()) == []


def test_apertium_modes_map_to_two_letter_pairs_without_variants() -> None:
    assert parse_modes("  eng-spa\n  spa-eng\n  spa-eng_US\n  en-ca\n  xyz-spa\n") == {
        ("en", "es"): "eng-spa",
        ("es", "en"): "spa-eng",
        ("en", "ca"): "en-ca",
    }


def test_lines_are_translated_one_for_one() -> None:
    assert translate_lines(["The house is big.", "", "Good morning."], "eng-spa") == [
        "La casa es grande.",
        "",
        "Buenos días.",
    ]


def test_speech_too_long_for_its_slot_is_sped_up_at_most_twice() -> None:
    assert fit_rate(2.0, 3.0, rate=175) == 175
    assert fit_rate(3.0, 2.0, rate=175) == round(175 * 1.5 * 1.05)
    assert fit_rate(10.0, 2.0, rate=175) == 350


def test_placed_speech_is_cut_with_a_fade_where_the_slot_ends() -> None:
    track = np.zeros(MIX_RATE, dtype=np.float32)
    speech = np.ones(MIX_RATE // 2, dtype=np.float32)

    place(track, speech, start=MIX_RATE // 4, stop=MIX_RATE // 2)

    assert track[: MIX_RATE // 4].max() == 0.0
    assert track[MIX_RATE // 4 + 10] == 1.0
    assert track[MIX_RATE // 2 - 1] == 0.0  # faded out
    assert track[MIX_RATE // 2 :].max() == 0.0


def test_the_mix_lowers_the_original_and_never_clips() -> None:
    original = np.full(100, 0.5, dtype=np.float32)

    assert mix(original, np.zeros(100, dtype=np.float32), 0.2) == pytest.approx(np.full(100, 0.1))
    assert np.abs(mix(original, np.ones(100, dtype=np.float32), 1.0)).max() <= 0.99


def test_resampling_keeps_duration_and_shape() -> None:
    tone = np.sin(np.linspace(0, 2 * np.pi * 5, 22050, endpoint=False)).astype(np.float32)

    up = resample(tone, 22050, 44100)

    assert up.size == 44100
    assert up[::2] == pytest.approx(tone, abs=1e-6)
