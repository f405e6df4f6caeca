"""Lifecycle shared by the embedded aiohttp servers (virtual StableToolBench and TMDB APIs)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from aiohttp import web

from codetool_kernel.errors import ToolGatewayError
from codetool_kernel.lifecycle import AsyncLifecycle

SOURCE_HEADER = "X-CodeTool-Source"
"""Response header of the embedded servers saying where an answer came from: `simulated` (made up
by a simulator), `recorded` (replayed from a response cache) or `live` (the real API just now).
The gateway records `simulated` on the call and does not pass the header on to sandboxed code."""


class EmbeddedServer(AsyncLifecycle, ABC):
    """An aiohttp app served in the current event loop; `port=0` picks a free port.

    `async with Server(...) as srv:` starts it; `srv.base_url` is `http://host:port`.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @abstractmethod
    def build_app(self) -> web.Application:
        """The routes this server answers."""

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise ToolGatewayError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving (idempotent)."""
        if self._runner is not None:
            return
        # handlers of clients that hung up are cancelled, and shutdown waits at most 5 s for the rest
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=5.0, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ToolGatewayError(
                f"{type(self).__name__}: cannot listen on {self.host}:{self.port} ({exc.strerror})"
            ) from None
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def aclose(self) -> None:
        """Stop serving and free the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
