"""Speaker profiles and voice conversion on the WORLD vocoder (the pyworld wheel).

A profile holds what makes a voice recognisable at this level: its pitch (median and spread of log-F0) and its
timbre (the mean log spectral envelope of its voiced frames, whose peaks are the formants). Conversion
analyses speech with WORLD, moves its pitch and envelope onto a profile and resynthesises it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

FRAME_PERIOD_MS = 5.0
F0_FLOOR, F0_CEIL = 60.0, 600.0
# Exact digital silence (espeak-ng's pauses) makes WORLD's estimators divide by zero; -80 dBFS of noise is
# inaudible and keeps them finite.
NOISE_LEVEL = 1e-4
# Frames quieter than this, relative to the loudest, count as silence even if an estimator calls them voiced.
VOICED_FLOOR_DB = -40.0
# The formant stretch is searched within +-25%, a range that keeps speech intelligible, below 5 kHz where
# the formants are.
MAX_WARP = 1.25
WARP_STEPS = 31
WARP_FIT_HZ = 5000.0
SILENCE_PEAK = 10 ** (-50 / 20)  # a recording that never gets louder than -50 dBFS holds no speech
TARGET_RMS = 0.1  # -20 dBFS
PEAK_LIMIT = 0.95

Floats = NDArray[np.float64]


class NoVoice(ValueError):
    """The recording holds no voiced speech to learn from."""


def _load_world() -> ModuleType:
    """pyworld's compiled module.

    pyworld 0.3.5's package `__init__` imports `pkg_resources` only to read its own version, and setuptools 81+
    no longer ships that module; the extension needs nothing from it, so it is loaded directly when that fails.
    """
    try:
        return importlib.import_module("pyworld")
    except ModuleNotFoundError as error:
        if error.name != "pkg_resources":
            raise
    spec = importlib.util.find_spec("pyworld")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pyworld is not installed", name="pyworld")
    folder = Path(next(iter(spec.submodule_search_locations)))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"pyworld{suffix}"
        if path.exists():
            loader = importlib.machinery.ExtensionFileLoader("pyworld.pyworld", str(path))
            module_spec = importlib.util.spec_from_file_location("pyworld.pyworld", path, loader=loader)
            if module_spec is None:
                break
            module = importlib.util.module_from_spec(module_spec)
            loader.exec_module(module)
            return module
    raise ModuleNotFoundError("pyworld's compiled module is missing", name="pyworld.pyworld")


@functools.cache
def world() -> Any:
    """pyworld's module, loaded on first use."""
    return _load_world()


@dataclass(frozen=True)
class WorldFeatures:
    """WORLD's analysis of one stretch of speech: F0 per frame (0 = unvoiced), envelope, aperiodicity."""

    f0: Floats
    envelope: Floats
    aperiodicity: Floats
    voiced: NDArray[np.bool_]
    sample_rate: int


@dataclass(frozen=True)
class SpeakerProfile:
    """Pitch and timbre statistics of one voice, at one sample rate."""

    median_f0: float
    log_f0_spread: float
    mean_log_envelope: Floats
    sample_rate: int


def analyse(samples: NDArray[np.floating], sample_rate: int, seed: int = 0) -> WorldFeatures:
    """WORLD features (harvest, cheaptrick, d4c) of mono float samples."""
    pw = world()
    noise = np.random.default_rng(seed).standard_normal(samples.size) * NOISE_LEVEL
    x = np.ascontiguousarray(samples, dtype=np.float64) + noise
    # Harvest with a 60 Hz floor drops an octave on much of a ~300 Hz voice (measured on espeak-ng's "en+f3"),
    # which moves the median by up to 20%; a quick dio pass finds the voice's range, and harvest's floor
    # follows it.
    rough, rough_times = pw.dio(x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    rough = pw.stonemask(x, rough, rough_times, sample_rate)
    floor = max(F0_FLOOR, 0.6 * float(np.median(rough[rough > 0]))) if np.any(rough > 0) else F0_FLOOR
    f0, times = pw.harvest(x, sample_rate, f0_floor=floor, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    # One FFT size for both: by default d4c picks it for a 71 Hz floor, cheaptrick for ours.
    fft_size = pw.get_cheaptrick_fft_size(sample_rate, F0_FLOOR)
    envelope = pw.cheaptrick(x, f0, times, sample_rate, fft_size=fft_size)
    aperiodicity = pw.d4c(x, f0, times, sample_rate, fft_size=fft_size)
    energy_db = 10.0 * np.log10(np.sum(envelope, axis=1) + 1e-30)
    loud = energy_db > energy_db.max() + VOICED_FLOOR_DB
    return WorldFeatures(
        f0=np.asarray(f0, dtype=np.float64),
        envelope=np.asarray(envelope, dtype=np.float64),
        aperiodicity=np.asarray(aperiodicity, dtype=np.float64),
        voiced=(np.asarray(f0) > 0) & loud,
        sample_rate=sample_rate,
    )


def _profile_of(parts: list[WorldFeatures]) -> SpeakerProfile:
    voiced_f0 = np.concatenate([p.f0[p.voiced] for p in parts])
    if voiced_f0.size == 0:
        raise NoVoice("no voiced speech found")
    envelopes = np.concatenate([p.envelope[p.voiced] for p in parts])
    log_f0 = np.log(voiced_f0)
    return SpeakerProfile(
        median_f0=float(np.exp(np.median(log_f0))),
        log_f0_spread=float(np.std(log_f0)),
        mean_log_envelope=np.mean(np.log(envelopes + 1e-30), axis=0),
        sample_rate=parts[0].sample_rate,
    )


def speaker_profile(samples: NDArray[np.floating], sample_rate: int, min_voiced_frames: int = 20) -> SpeakerProfile:
    """The profile of the voice in a recording; NoVoice if it has fewer than `min_voiced_frames` voiced frames."""
    if samples.size == 0 or float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise NoVoice("the recording is silent")
    features = analyse(samples, sample_rate)
    if int(features.voiced.sum()) < min_voiced_frames:
        raise NoVoice(f"only {int(features.voiced.sum())} voiced frames found")
    return _profile_of([features])


def _warp_frequency(envelope: Floats, factor: float) -> Floats:
    """Stretch envelopes along frequency: what sat at f moves to f * factor."""
    bins = envelope.shape[1]
    source = np.clip(np.arange(bins) / factor, 0, bins - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, bins - 1)
    weight = source - low
    warped: Floats = envelope[:, low] * (1 - weight) + envelope[:, high] * weight
    return warped


@dataclass(frozen=True)
class Conversion:
    """Converted speech, one float32 array per analysed part; the median F0 it was given; the formant stretch."""

    speech: list[NDArray[np.float32]]
    median_f0: float
    warp: float


def _fit_warp(source: SpeakerProfile, target: SpeakerProfile) -> float:
    """The frequency-axis stretch that best lays the source's mean log envelope onto the target's.

    Fitted on the envelopes below WARP_FIT_HZ (where the formants are), ignoring overall level.
    """
    bins = source.mean_log_envelope.size
    band = np.linspace(0.0, source.sample_rate / 2, bins) <= WARP_FIT_HZ
    best, best_error = 1.0, np.inf
    for factor in np.geomspace(1 / MAX_WARP, MAX_WARP, WARP_STEPS):
        warped = _warp_frequency(source.mean_log_envelope[None, :], float(factor))[0]
        error = float(np.var((target.mean_log_envelope - warped)[band]))
        if error < best_error:
            best, best_error = float(factor), error
    return best


def convert(parts: list[WorldFeatures], target: SpeakerProfile) -> Conversion:
    """Resynthesise analysed speech with the target's pitch and timbre.

    Log-F0 is shifted so its median is the target's and scaled to the target's spread. The envelope is stretched
    along frequency by the factor that best fits its mean to the target's, which moves the formants where the
    target's are. Matching the mean envelope itself with a smooth filter was tried and left out: on references
    of a few seconds it copied the reference sentence's sounds, and the mean-MFCC distance to other clips of
    the same speaker grew.
    """
    source = _profile_of(parts)
    if source.sample_rate != target.sample_rate:
        raise ValueError(f"profile is at {target.sample_rate} Hz, speech at {source.sample_rate} Hz")
    spread = target.log_f0_spread / source.log_f0_spread if source.log_f0_spread > 1e-6 else 1.0
    warp = _fit_warp(source, target)
    pw = world()
    outputs: list[NDArray[np.float32]] = []
    voiced_f0: list[Floats] = []
    for part in parts:
        f0 = np.zeros_like(part.f0)
        has_pitch = part.f0 > 0
        log_f0 = np.log(part.f0[has_pitch])
        f0[has_pitch] = np.exp((log_f0 - np.log(source.median_f0)) * spread + np.log(target.median_f0))
        f0 = np.clip(f0, 0.0, F0_CEIL)
        voiced_f0.append(f0[part.voiced])
        envelope = np.ascontiguousarray(_warp_frequency(part.envelope, warp))
        speech = pw.synthesize(f0, envelope, part.aperiodicity, part.sample_rate, FRAME_PERIOD_MS)
        outputs.append(np.asarray(speech, dtype=np.float32))
    return Conversion(speech=outputs, median_f0=float(np.median(np.concatenate(voiced_f0))), warp=warp)


def normalise_loudness(samples: NDArray[np.float32]) -> NDArray[np.float32]:
    """Scale to -20 dBFS RMS over the non-silent part, with peaks kept under 0.95."""
    magnitude = np.abs(samples)
    if magnitude.size == 0 or magnitude.max() <= 0:
        return samples
    active = samples[magnitude > magnitude.max() * 0.01]
    rms = float(np.sqrt(np.mean(np.square(active, dtype=np.float64))))
    gain = min(TARGET_RMS / max(rms, 1e-9), PEAK_LIMIT / float(magnitude.max()))
    return (samples * gain).astype(np.float32)
