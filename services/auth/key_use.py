"""The auth service's side of "last used": it hears which keys the services accepted and records it."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.auth.api_key_store import ApiKeyStore
from services.common import messaging
from services.common.logging import get_logger

log = get_logger(__name__)

# One auth replica records each report.
QUEUE_GROUP = "auth-key-uses"


async def record_key_uses(nc: NatsClient, store: ApiKeyStore) -> None:
    """Forever: record every use report (core NATS; nats-py subscribes again after a reconnect)."""

    async def on_report(message: Msg) -> None:
        try:
            await asyncio.to_thread(store.record_use_report, message.data)
        except Exception:  # a lost report only makes "last used" older
            log.exception("recording API key uses failed")

    subscription = await nc.subscribe(messaging.API_KEY_USED_SUBJECT, queue=QUEUE_GROUP, cb=on_report)
    try:
        await asyncio.Event().wait()
    finally:
        await subscription.unsubscribe()
