"""What the `restricted` and `process` backends share: fresh children of one warm fork server."""

from __future__ import annotations

import asyncio

from codetool_kernel.errors import ConfigError
from codetool_kernel.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler
from sandbox.base import Sandbox
from sandbox.exchange import run_exchange
from sandbox.forkserver import ForkServer, Launcher


class ForkedSandbox(Sandbox):
    """Runs each cell in a fresh child of a fork server, at most `pool_size` at once."""

    def __init__(
        self, limits: SandboxLimits | None, mode: str, *, pool_size: int, start_timeout_s: float, launcher: Launcher | None = None
    ) -> None:
        super().__init__(limits)
        if pool_size < 1:
            raise ConfigError(f"{self.name} sandbox: pool_size must be >= 1, got {pool_size}")
        self.pool_size = pool_size
        self._server = ForkServer(mode, spares=pool_size, start_timeout_s=start_timeout_s, launcher=launcher)
        self._slots = asyncio.Semaphore(pool_size)

    @property
    def server(self) -> ForkServer:
        """The fork server (its pid and restart count are useful to monitoring and tests)."""
        return self._server

    async def start(self) -> None:
        await self._server.start()

    async def aclose(self) -> None:
        await self._server.aclose()

    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        async with self._slots, self._server.child() as child:
            outcome = await run_exchange(child.reader, child.writer, cell, self.limits, tools, self.name, child.on_ready)
            return outcome.result
