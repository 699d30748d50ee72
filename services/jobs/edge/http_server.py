"""Serves an ASGI app with uvicorn on the service's own event loop, stopped by the service's drain."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The service handles SIGTERM itself (services/common/server.py) and stops this server on drain.
        yield


class HttpEdge:
    """One HTTP server: `serve` runs it (a background task), `stop` ends it and lets open requests finish."""

    def __init__(self, app: ASGIApp, host: str, port: int, grace_seconds: float) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            proxy_headers=False,
            timeout_graceful_shutdown=int(grace_seconds),
            # Envoy keeps its connections to the edge open; idle ones are closed after this.
            timeout_keep_alive=75,
        )
        self._server = _Server(config)

    async def serve(self) -> None:
        """Serve until `stop`."""
        await self._server.serve()

    async def stop(self) -> None:
        """Stop taking requests; uvicorn lets the open ones finish within the grace."""
        self._server.should_exit = True
