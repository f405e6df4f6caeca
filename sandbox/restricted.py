"""The `restricted` backend: RestrictedPython code in a forked, rlimited child per execution.

Why a fork server: a warm runner process (RestrictedPython, the allowed modules and the
guards already built) forks one child per execution. The child starts from that clean
state, so no execution sees another's, and starting it costs a fork instead of an
interpreter start plus imports (see `bench/sandbox_latency.py` for the figures). The
children are bounded by `pool_size` (executions at once), rlimits set in the child
(address space, CPU seconds, file size, open files), the runner's own time alarms and
the host's hard deadline, which kills the child's process group.
"""

from __future__ import annotations

import asyncio

from codetool.errors import ConfigError
from sandbox.base import Sandbox, register_backend
from sandbox.exchange import run_exchange
from sandbox.forkserver import ForkServer
from sandbox.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler


@register_backend("restricted")
class RestrictedSandbox(Sandbox):
    """Runs cells under RestrictedPython in fresh forked children of one warm runner."""

    def __init__(self, limits: SandboxLimits | None = None, *, pool_size: int = 4, start_timeout_s: float = 30.0) -> None:
        super().__init__(limits)
        if pool_size < 1:
            raise ConfigError(f"restricted sandbox: pool_size must be >= 1, got {pool_size}")
        self.pool_size = pool_size
        self._server = ForkServer("restricted", spares=pool_size, start_timeout_s=start_timeout_s)
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
            child.finished = outcome.finished
            return outcome.result
