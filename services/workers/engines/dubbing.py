"""Dubbing: speech recognised (Whisper), translated (Apertium), re-voiced (espeak-ng) and mixed back in time.

Each translated segment is spoken into the time slot of the original segment: faster if it would run long,
followed by silence if it is short. The original track stays underneath at `original_volume`.
"""

from __future__ import annotations

import array
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from services.common import job_types
from services.common.engine_catalog import DEFAULT_RATE
from services.common.job_params import DubbingParams, JobParams
from services.workers.engines.base import BadInput, EngineContext, EngineResult, params_of
from services.workers.engines.toolkit import ffmpeg
from services.workers.engines.toolkit.espeak import Espeak
from services.workers.engines.toolkit.speech import voice_name
from services.workers.engines.toolkit.transcript import Segment, split_sentences, to_srt
from services.workers.engines.toolkit.translate import translate_lines, translation_mode
from services.workers.engines.toolkit.whisper import load_model, primary_language, transcribe_file

MIX_RATE = 44100
DEFAULT_ORIGINAL_VOLUME = 0.2
MAX_SPEEDUP = 2.0  # faster than this, espeak-ng stops being intelligible
FADE_SECONDS = 0.02
SUBTITLES = "subtitles.srt"
_VIDEO_CODEC = re.compile(r"Stream #\S+.*?Video: (\w+)")


@dataclass(frozen=True)
class DubbedSegment:
    """A recognised segment and what it became."""

    start: float
    end: float
    text: str
    translation: str


def fit_rate(spoken_seconds: float, slot_seconds: float, rate: int = DEFAULT_RATE) -> int:
    """The espeak-ng rate that makes speech of `spoken_seconds` at `rate` fit the slot, at most MAX_SPEEDUP faster."""
    if slot_seconds <= 0 or spoken_seconds <= slot_seconds:
        return rate
    # Aim a little short: the duration does not shrink exactly in proportion to the rate.
    return round(rate * min(spoken_seconds / slot_seconds * 1.05, MAX_SPEEDUP))


def resample(samples: NDArray[np.float32], from_rate: int, to_rate: int) -> NDArray[np.float32]:
    """Linear-interpolation resampling; enough for speech going up from espeak's 22.05 kHz."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    count = round(samples.size * to_rate / from_rate)
    positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


def place(track: NDArray[np.float32], speech: NDArray[np.float32], start: int, stop: int) -> None:
    """Add `speech` into `track` from sample `start`, cut with a short fade where it would pass `stop`."""
    stop = min(stop, track.size)
    room = stop - start
    if room <= 0:
        return
    if speech.size > room:
        speech = speech[:room].copy()
        fade = min(room, round(FADE_SECONDS * MIX_RATE))
        speech[room - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    track[start : start + speech.size] += speech


def mix(original: NDArray[np.float32], speech: NDArray[np.float32], original_volume: float) -> NDArray[np.float32]:
    """The new speech over the original lowered to `original_volume`, scaled down only if it would clip."""
    mixed = original * np.float32(original_volume) + speech
    peak = float(np.abs(mixed).max(initial=0.0))
    return mixed / np.float32(peak / 0.99) if peak > 0.99 else mixed


@dataclass(frozen=True)
class DubbingRequest:
    """A dubbing job's parameters, checked: what to translate with and whose voice to speak in."""

    source: str
    target: str
    mode: str  # the Apertium mode, e.g. eng-spa
    voice: str  # the espeak-ng voice
    original_volume: float

    @classmethod
    def from_params(cls, params: DubbingParams, espeak: Espeak) -> DubbingRequest:
        """Check the parameters; BadInput says what is wrong."""
        source = primary_language(params.source_language)
        if not params.target_language.strip():
            raise BadInput("target_language is required, e.g. es")
        target = primary_language(params.target_language)
        volume = params.original_volume or DEFAULT_ORIGINAL_VOLUME  # proto3 cannot tell 0 from unset
        if not 0.0 < volume <= 1.0:
            raise BadInput(f"original_volume must be between 0 and 1, not {params.original_volume}")
        mode = translation_mode(source, target)
        voice = voice_name(target, params.voice)
        if not espeak.has_voice(voice):
            raise BadInput(f"no voice {voice!r} to speak {target}")
        return cls(source, target, mode, voice, volume)


def _video_codec(path: Path) -> str:
    done = subprocess.run(
        [ffmpeg.executable(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, check=False
    )
    match = _VIDEO_CODEC.search(done.stderr.decode(errors="replace"))
    return match.group(1) if match else ""


def mux(video: Path, audio: Path, target: Path) -> Path:
    """`video`'s picture with `audio` as its only sound, as an MP4 (H.264 copied, anything else re-encoded)."""
    if _video_codec(video) == "h264":
        picture = ["-c:v", "copy"]
    else:
        # yuv420p needs even dimensions.
        picture = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
        picture += ["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"]
    args = ["-y", "-i", str(video), "-i", str(audio), "-map", "0:v:0", "-map", "1:a:0", *picture]
    args += ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(target)]
    done = subprocess.run([ffmpeg.executable(), "-hide_banner", "-nostdin", *args], capture_output=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["unknown error"])[-1]
        raise BadInput(f"cannot write the dubbed video for {video.name}: {last}")
    return target


class ApertiumDubbing:
    """DUBBING engine: a video or audio file in, the same with translated speech and subtitles out."""

    job_type = job_types.DUBBING.name

    def __init__(self, espeak: Espeak | None = None) -> None:
        self._espeak = espeak

    def run(self, params: JobParams, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Dub the one input into dubbed.mp4 (video) or dubbed.wav (audio), plus subtitles.srt."""
        espeak = self._espeak or Espeak.shared()
        request = DubbingRequest.from_params(params_of(params, DubbingParams), espeak)
        model = load_model(request.source)
        if len(inputs) != 1:
            raise BadInput(f"dubbing takes one video or audio file, got {len(inputs)}")
        path = inputs[0]

        ctx.progress(0, "extracting audio")
        _, _, has_video = ffmpeg.media_info(path)
        ctx.check_cancelled()
        ctx.progress(5, "transcribing")
        heard = transcribe_file(
            model, path, request.source, ctx, lambda done: ctx.progress(5 + int(35 * done), "transcribing")
        )
        # The mix needs the whole original track in memory (4 bytes a sample at 44.1 kHz: 635 MB an hour);
        # the DUBBING input limit bounds it, and the engine process's memory ceiling catches a lying header.
        original = ffmpeg.decode_audio(path, MIX_RATE)
        ctx.check_cancelled()
        recognised = [sentence for segment in heard.segments for sentence in split_sentences(segment)]
        if not recognised:
            raise BadInput(f"no speech was recognised in {path.name}: nothing to dub")
        ctx.check_cancelled()

        ctx.progress(40, f"translating {len(recognised)} segments ({request.mode})")
        translations = translate_lines([s.text for s in recognised], request.mode)
        segments = [DubbedSegment(s.start, s.end, s.text, t) for s, t in zip(recognised, translations, strict=True)]
        ctx.log(f"translated {len(segments)} segments {request.source}->{request.target} with apertium {request.mode}")

        track = np.zeros_like(original)
        for index, segment in enumerate(segments):
            ctx.check_cancelled()
            following = segments[index + 1].start if index + 1 < len(segments) else original.size / MIX_RATE
            rate = self._speak_into(track, espeak, segment, request.voice, following)
            if rate != DEFAULT_RATE:
                ctx.log(f"segment {index + 1} spoken faster (rate {rate}) to fit {segment.end - segment.start:.2f} s")
            ctx.progress(45 + 40 * (index + 1) // len(segments), f"spoke segment {index + 1} of {len(segments)}")

        ctx.check_cancelled()
        ctx.progress(88, "mixing")
        mixed = mix(original, track, request.original_volume)
        subtitles = ctx.output_dir / SUBTITLES
        subtitles.write_text(to_srt([Segment(s.start, s.end, s.translation) for s in segments]), encoding="utf-8")
        if has_video:
            ctx.progress(92, "writing the video")
            with tempfile.TemporaryDirectory() as scratch:
                mixed_wav = ffmpeg.write_wav(Path(scratch) / "mix.wav", mixed, MIX_RATE)
                main = mux(path, mixed_wav, ctx.output_dir / "dubbed.mp4")
        else:
            main = ffmpeg.write_wav(ctx.output_dir / "dubbed.wav", mixed, MIX_RATE)
        ctx.progress(100, f"dubbed {len(segments)} segments")
        return EngineResult(
            outputs=[main, subtitles],
            meta={
                "duration_seconds": heard.duration_seconds,
                "source_language": request.source,
                "target_language": request.target,
                "segments": [
                    {"start": s.start, "end": s.end, "text": s.text, "translation": s.translation} for s in segments
                ],
                "format": "mp4" if has_video else "wav",
            },
        )

    @staticmethod
    def _speak_into(
        track: NDArray[np.float32], espeak: Espeak, segment: DubbedSegment, voice: str, until: float
    ) -> int:
        """Speak the translation in the segment's slot, running on into the silence before `until` at most.

        Returns the espeak-ng rate used.
        """
        if not segment.translation:
            return DEFAULT_RATE
        slot = segment.end - segment.start
        spoken = _trimmed(espeak.synthesize(segment.translation, voice, DEFAULT_RATE))
        rate = fit_rate(spoken.size / espeak.sample_rate, slot)
        if rate != DEFAULT_RATE:
            spoken = _trimmed(espeak.synthesize(segment.translation, voice, rate))
        start = round(segment.start * MIX_RATE)
        place(track, resample(spoken, espeak.sample_rate, MIX_RATE), start, round(until * MIX_RATE))
        return rate


def _trimmed(samples: array.array[int]) -> NDArray[np.float32]:
    """espeak-ng's int16 output as float32 without the silence at either end."""
    data = np.frombuffer(samples, dtype=np.int16).astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(data) > 0.01)
    return data[loud[0] : loud[-1] + 1] if loud.size else data[:0]
