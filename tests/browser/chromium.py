"""How the browser tests launch Debian's Chromium, and how long any one step may wait."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# The machine has no internet: nothing in Chromium may try to reach out, and root needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# Every wait in these tests is bounded by this (milliseconds) unless it says otherwise.
STEP_TIMEOUT_MS = 15_000
