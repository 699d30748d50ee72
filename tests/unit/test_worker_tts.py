"""The espeak-ng TTS engine: real speech, checked by what the WAV file holds."""

from __future__ import annotations

import array
import tempfile
import wave
from pathlib import Path

import pytest
from aiorch.jobs.v1 import types_pb2

from services.workers.engines.base import BadInput, Cancelled
from services.workers.engines.registry import create_engine, parse_job_types
from services.workers.engines.tts import EspeakTts, split_text, voice_name

SENTENCE = "The quick brown fox jumps over the lazy dog."


class RecordingContext:
    """An EngineContext that records reports and stops once `stop_after` progress reports were made."""

    def __init__(self, output_dir: Path, stop_after: int | None = None) -> None:
        self.output_dir = output_dir
        self.percents: list[int] = []
        self.lines: list[str] = []
        self._stop_after = stop_after

    def progress(self, percent: int, message: str = "") -> None:
        self.percents.append(percent)

    def log(self, line: str, level: str = "info") -> None:
        self.lines.append(line)

    def check_cancelled(self) -> None:
        if self._stop_after is not None and len(self.percents) >= self._stop_after:
            raise Cancelled("stop requested")


def speak(tmp_path: Path, **params: object) -> tuple[Path, dict[str, object], RecordingContext]:
    """Run the engine with its own output directory under `tmp_path`."""
    output_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    ctx = RecordingContext(output_dir)
    result = EspeakTts().run(types_pb2.TtsParams(**params), [], ctx)  # type: ignore[arg-type]
    return result.outputs[0], result.meta, ctx


def wav_facts(path: Path) -> tuple[float, int, array.array[int]]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    samples = array.array("h", frames)
    return len(samples) / rate, rate, samples


def test_a_sentence_becomes_a_wav_of_plausible_length(tmp_path: Path) -> None:
    path, meta, _ = speak(tmp_path, text=SENTENCE)

    duration, rate, samples = wav_facts(path)
    assert path.name == "speech.wav"
    assert rate == 22050
    assert 1.0 < duration < 10.0
    assert max(abs(s) for s in samples) > 1000  # real sound, not silence
    assert meta == {
        "duration_seconds": pytest.approx(duration, abs=0.01),
        "sample_rate": 22050,
        "format": "wav",
        "language": "en",
    }


def test_longer_text_gives_longer_speech(tmp_path: Path) -> None:
    short, _, _ = speak(tmp_path, text=SENTENCE)
    long, _, _ = speak(tmp_path, text=" ".join([SENTENCE] * 4))

    assert wav_facts(long)[0] > 3 * wav_facts(short)[0]


def test_languages_sound_different(tmp_path: Path) -> None:
    english, _, _ = speak(tmp_path, text="Buenos dias, amigo.", language="en")
    spanish, meta, _ = speak(tmp_path, text="Buenos dias, amigo.", language="es")

    assert meta["language"] == "es"
    assert wav_facts(english)[2] != wav_facts(spanish)[2]


def test_rate_changes_the_duration(tmp_path: Path) -> None:
    slow, _, _ = speak(tmp_path, text=SENTENCE, rate=100)
    fast, _, _ = speak(tmp_path, text=SENTENCE, rate=300)

    assert wav_facts(slow)[0] > 1.8 * wav_facts(fast)[0]


def test_progress_rises_to_100_one_step_per_sentence(tmp_path: Path) -> None:
    _, _, ctx = speak(tmp_path, text=" ".join([SENTENCE] * 4))

    assert ctx.percents == [25, 50, 75, 100]


def test_cancel_between_sentences_stops_the_engine(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, stop_after=2)

    with pytest.raises(Cancelled):
        EspeakTts().run(types_pb2.TtsParams(text=" ".join([SENTENCE] * 5)), [], ctx)

    assert ctx.percents == [20, 40]


@pytest.mark.parametrize("text", ["", "   \n "])
def test_empty_text_is_bad_input(tmp_path: Path, text: str) -> None:
    with pytest.raises(BadInput, match="empty"):
        speak(tmp_path, text=text)


@pytest.mark.parametrize("language", ["xx", "klingon!", "zz-qq"])
def test_unknown_language_is_bad_input_naming_supported_ones(tmp_path: Path, language: str) -> None:
    with pytest.raises(BadInput, match="en, es, fr, de"):
        speak(tmp_path, text=SENTENCE, language=language)


def test_formats_other_than_wav_are_refused_for_now(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="format mp3 is not supported yet"):
        speak(tmp_path, text=SENTENCE, format="mp3")


@pytest.mark.parametrize(("field", "value"), [("rate", 20), ("rate", 1000), ("pitch", 101)])
def test_out_of_range_rate_or_pitch_is_bad_input(tmp_path: Path, field: str, value: int) -> None:
    with pytest.raises(BadInput, match=field):
        speak(tmp_path, text=SENTENCE, **{field: value})


def test_a_voice_variant_is_appended_to_the_language() -> None:
    assert voice_name("EN", "f3") == "en+f3"
    assert voice_name("", "") == "en"
    with pytest.raises(BadInput):
        voice_name("en", "../x")


def test_text_is_split_at_sentences_and_long_ones_cut_under_the_limit() -> None:
    long_sentence = "word " * 200

    chunks = split_text(f"One. Two? Three! {long_sentence}", limit=100)

    assert chunks[:3] == ["One.", "Two?", "Three!"]
    assert all(len(c) <= 100 for c in chunks)
    assert " ".join(chunks[3:]).split() == long_sentence.split()


def test_types_without_an_engine_fail_as_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no engine for STT yet"):
        create_engine("STT").run(types_pb2.SttParams(), [], RecordingContext(tmp_path))


def test_worker_types_are_parsed_and_unknown_ones_refused() -> None:
    assert parse_job_types("tts, Stt,TTS") == ["TTS", "STT"]
    with pytest.raises(ValueError, match="unknown job type 'ocr'"):
        parse_job_types("tts,ocr")
