"""The engine catalog: what the workers running now report they can do (services/workers/offers.py), merged
per job type. A worker that stopped reporting drops out after OFFER_TTL_SECONDS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.common import messaging
from services.common.engine_catalog import EngineOffer
from services.common.kv_mirror import KvMirror
from services.common.logging import get_logger

log = get_logger(__name__)


@dataclass
class CatalogEntry:
    """What every live worker of one job type offers together."""

    job_type: str
    engines: set[str] = field(default_factory=set)
    workers: int = 0
    models: set[str] = field(default_factory=set)
    languages: set[str] = field(default_factory=set)
    voices: set[str] = field(default_factory=set)
    pairs: set[tuple[str, str, str]] = field(default_factory=set)


class EngineOffers(KvMirror):
    """Every worker's last report, from the `engine_offers` bucket."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(messaging.ENGINE_OFFERS_BUCKET)
        self._reports: dict[str, tuple[float, list[EngineOffer]]] = {}
        self._clock = clock

    def apply(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._reports.pop(key, None)
            return
        try:
            data = json.loads(value)
            report = [EngineOffer.from_dict(o) for o in data["offers"]]
            self._reports[key] = (float(data["at"]), report)
        except (ValueError, KeyError, TypeError, IndexError):
            log.warning("unreadable engine offer report", key=key)

    def catalog(self) -> list[CatalogEntry]:
        """Per job type, what the workers that reported within the bucket's age offer."""
        horizon = self._clock() - messaging.OFFER_TTL_SECONDS
        entries: dict[str, CatalogEntry] = {}
        for at, report in self._reports.values():
            if at < horizon:
                continue
            for offer in report:
                entry = entries.setdefault(offer.job_type, CatalogEntry(offer.job_type))
                entry.engines.add(offer.engine)
                entry.workers += 1
                entry.models.update(offer.models)
                entry.languages.update(offer.languages)
                entry.voices.update(offer.voices)
                entry.pairs.update(offer.pairs)
        return [entries[name] for name in sorted(entries)]
