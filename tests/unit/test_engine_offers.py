"""The engine catalog's parts without a stack: what a worker finds installed, and merging live reports."""

from __future__ import annotations

import json

from services.common import messaging
from services.common.engine_catalog import EngineOffer
from services.jobs.engine_offers import EngineOffers
from services.workers import offers


def test_a_worker_offers_what_is_installed_here() -> None:
    report = {o.job_type: o for o in offers.offers(["STT", "TTS", "DUBBING"], {})}
    assert set(report["STT"].models) == {"base", "tiny.en"}
    assert {"en", "es", "ca", "ja"} <= set(report["STT"].languages)
    assert {"joe", "kumo", "gongitsune"} <= set(report["TTS"].voices)
    assert {"en", "es", "fr", "de", "ca"} <= set(report["TTS"].languages)
    pairs = set(report["DUBBING"].pairs)
    # The Makefile installs the English-Spanish and English-Catalan pairs; English-Catalan is direct.
    assert {("en", "es", ""), ("en", "ca", "")} <= pairs
    assert all(via in ("", "es") for _, _, via in pairs)
    assert all((s, t, "") not in pairs for s, t, via in pairs if via)


def test_the_catalog_merges_live_workers_and_drops_silent_ones() -> None:
    now = [1000.0]
    view = EngineOffers(clock=lambda: now[0])

    def report(worker: str, at: float, *items: EngineOffer) -> None:
        body = {"worker_id": worker, "at": at, "offers": [o.to_dict() for o in items]}
        view.apply(messaging.engine_offer_key(worker), json.dumps(body).encode())

    report("a", 990, EngineOffer("STT", "x:Stt", models=("base",), languages=("en", "es")))
    report("b", 995, EngineOffer("STT", "gpu:Stt", models=("tiny.en",), languages=("en",)))
    report("c", 990, EngineOffer("DUBBING", "x:Dub", pairs=(("en", "es", ""),)))
    (dubbing, stt) = view.catalog()
    assert (stt.job_type, stt.workers, stt.engines, stt.models) == ("STT", 2, {"x:Stt", "gpu:Stt"}, {"base", "tiny.en"})
    assert dubbing.pairs == {("en", "es", "")}
    now[0] = 990 + messaging.OFFER_TTL_SECONDS + 1
    assert [e.workers for e in view.catalog()] == [1]
    view.apply(messaging.engine_offer_key("b"), None)
    assert view.catalog() == []
    view.apply("worker.d", b"not json")
    assert view.catalog() == []


def test_an_offer_survives_its_json_form() -> None:
    offer = EngineOffer("DUBBING", "m:C", ("base",), ("en",), ("joe",), (("en", "gl", "es"),))
    assert EngineOffer.from_dict(json.loads(json.dumps(offer.to_dict()))) == offer
