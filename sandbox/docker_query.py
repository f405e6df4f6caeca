"""One container per query: the runner's fork server inside it, each candidate a fresh child of it.

A fork-server container (`ContainerSpec.fork_server`) runs `python -m runner --fork-server
/run/codetool/runner.sock`: the socket lies in a host directory of the container's own,
bind-mounted there (a Unix socket needs no network). The server's `ready` comes over the
attach socket (`fork_server_ready`, run by the pool before the container counts as warm),
and its stdin stays the control pipe: the host writes there the pids of the children to
kill (they live in the container's pid namespace), and closing it ends the server.

A `QuerySession` takes its container from the warm pool when it opens, in the background,
so the take overlaps the query's first model call; each execution connects to the socket
and gets a fresh child: its own process group, its own empty directory under `/tmp`, the
supervisor/cell split, sealed frames, seccomp filter, audit hook and limits of the process
backend. The container is removed when the session closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import AsyncIterator

from codetool_kernel.errors import SandboxError
from codetool_kernel.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler
from sandbox.channel import ChannelError, read_message, ready_pid
from sandbox.docker_pool import FORK_SERVER_DIR, ContainerPool, WarmContainer
from sandbox.docker_stream import DemuxedReader, attached_streams
from sandbox.exchange import run_exchange
from sandbox.forkserver import Child

SOCKET_NAME = "runner.sock"
_PID = struct.Struct("=i")
_DRAIN_BYTES = 1 << 16


def fork_server_command(base: tuple[str, ...], spares: int) -> list[str]:
    """The image's runner command turned into a fork server on the bind-mounted socket."""
    return [*base, "--fork-server", f"{FORK_SERVER_DIR}/{SOCKET_NAME}", "--spares", str(spares), "--own-pid-namespace"]


async def fork_server_ready(warm: WarmContainer, timeout_s: float) -> None:
    """Read the fork server's `ready` from the attach socket; `SandboxError` if it does not come."""
    reader, writer = await attached_streams(warm.sock)
    warm.output, warm.control = reader, writer
    try:
        async with asyncio.timeout(timeout_s):
            ready_pid(await read_message(reader))
    except (TimeoutError, ChannelError, OSError) as exc:
        raise SandboxError(f"the fork server in a sandbox container did not start: {exc or 'timed out'}; stderr: {reader.stderr_tail or '-'}") from None
    warm.drain = asyncio.create_task(_drain(reader))


async def _drain(reader: DemuxedReader) -> None:
    """Read the attach stream to its end, so that the server never blocks writing to stderr."""
    with contextlib.suppress(asyncio.IncompleteReadError, OSError):
        while True:
            await reader.readexactly(_DRAIN_BYTES)


class QuerySession:
    """The executions of one query, each in a fresh child of one container's fork server."""

    def __init__(self, pool: ContainerPool, limits: SandboxLimits, backend: str, *, executions: int, timeout_s: float) -> None:
        self._pool = pool
        self._limits = limits
        self._backend = backend
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(executions)
        self._take = asyncio.create_task(pool.take(timeout_s))

    @property
    def container_id(self) -> str | None:
        """The id of the query's container, once taken from the pool."""
        if not self._take.done() or self._take.cancelled() or self._take.exception() is not None:
            return None
        return self._take.result().container.id

    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        """Run `cell` in a fresh child of the query's fork server."""
        warm = await asyncio.shield(self._take)
        async with self._slots, self._child(warm) as child:
            outcome = await run_exchange(child.reader, child.writer, cell, self._limits, tools, self._backend, child.on_ready)
            return outcome.result

    @contextlib.asynccontextmanager
    async def _child(self, warm: WarmContainer) -> AsyncIterator[Child]:
        assert warm.dirs is not None and warm.control is not None
        try:
            async with asyncio.timeout(self._timeout_s):
                reader, writer = await asyncio.open_unix_connection(os.path.join(warm.dirs.work, SOCKET_NAME))
        except (OSError, TimeoutError) as exc:
            stderr = warm.output.stderr_tail if warm.output else ""
            raise SandboxError(f"cannot reach the query's sandbox container: {exc or 'timed out'}; stderr: {stderr or '-'}") from None
        child = Child(reader, writer)
        try:
            yield child
        finally:
            if child.pid is not None and not warm.control.is_closing():
                warm.control.write(_PID.pack(child.pid))  # the server kills its group: nothing of it outlives it
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def aclose(self) -> None:
        """Remove the query's container (in the background), or stop waiting for one."""
        if not self._take.done():
            self._take.cancel()
        with contextlib.suppress(asyncio.CancelledError, SandboxError):
            warm = await self._take
            self._pool.discard(warm)
