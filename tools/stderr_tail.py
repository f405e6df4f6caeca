"""The last lines a child process writes to stderr: read off a pipe in the event loop, kept bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from typing import IO

import structlog

log = structlog.get_logger(__name__)

_CHUNK_BYTES = 64 * 1024
_MAX_LINE_CHARS = 500


class StderrTail:
    """Give `tail.pipe` to a child as its stderr, then `await tail.start()`; `tail.last_line()` any time.

    Only the last `max_lines` lines (each cut to 500 characters) are kept, so a chatty child costs
    no more memory than a quiet one; every line is also logged at debug level under `label`.
    """

    def __init__(self, label: str, max_lines: int = 20) -> None:
        read_fd, write_fd = os.pipe()
        self.pipe: IO[str] = os.fdopen(write_fd, "w")
        self.label = label
        self.lines: deque[str] = deque(maxlen=max_lines)
        self._source: IO[bytes] | None = os.fdopen(read_fd, "rb", buffering=0)
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read on in the background; call once the child is spawned (it holds its own copy of the pipe)."""
        self.pipe.close()
        if self._source is None or self._reading is not None:
            return
        reader = asyncio.StreamReader()
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), self._source
        )
        self._source = None  # the transport owns it now
        self._reading = asyncio.create_task(self._read(reader, transport))

    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""

    async def aclose(self, wait_s: float = 2.0) -> None:
        """Read until the child's end of the pipe closes (at most `wait_s`), then stop."""
        self.pipe.close()
        if self._source is not None:
            self._source.close()
            self._source = None
        if self._reading is None:
            return
        done, _ = await asyncio.wait({self._reading}, timeout=wait_s)
        if not done:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    async def _read(self, reader: asyncio.StreamReader, transport: asyncio.BaseTransport) -> None:
        pending = b""
        try:
            while chunk := await reader.read(_CHUNK_BYTES):
                *complete, pending = (pending + chunk).split(b"\n")
                pending = pending[-_MAX_LINE_CHARS * 4 :]  # a line without end stays bounded too
                for raw in complete:
                    self._keep(raw)
            self._keep(pending)
        finally:
            transport.close()

    def _keep(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            self.lines.append(line[-_MAX_LINE_CHARS:])
            log.debug("child stderr", child=self.label, line=self.lines[-1])
