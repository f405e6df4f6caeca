"""A container's attach socket as the asyncio stream pair `sandbox.exchange` speaks over.

Without a TTY, Docker multiplexes the container's stdout and stderr on the attach socket:
each chunk comes after an 8-byte header (stream: 1 stdout, 2 stderr; 3 zero bytes; 4-byte
big-endian length). `DemuxedReader` hands on only the stdout bytes, reading the socket
only as fast as they are consumed, and keeps the last few KiB of stderr for diagnostics.
What goes to the container's stdin is not framed: the writer is the socket's own.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

_HEADER = struct.Struct(">BxxxI")
_STDOUT, _STDERR = 1, 2
_STDERR_TAIL_BYTES = 4096
_MAX_CHUNK_BYTES = 1 << 24
"""Docker sends chunks of at most a few KiB; anything this large means a broken stream."""


class DemuxedReader(asyncio.StreamReader):
    """The container's stdout, taken out of the multiplexed attach stream (`readexactly` only)."""

    def __init__(self, raw: asyncio.StreamReader) -> None:
        super().__init__()
        self._raw = raw
        self._stdout = bytearray()
        self._stderr_tail = bytearray()

    @property
    def stderr_tail(self) -> str:
        """The last bytes the container wrote to stderr."""
        return self._stderr_tail.decode("utf-8", errors="replace")

    async def readexactly(self, n: int) -> bytes:
        while len(self._stdout) < n:
            try:
                stream, length = _HEADER.unpack(await self._raw.readexactly(_HEADER.size))
                if length > _MAX_CHUNK_BYTES:
                    raise ConnectionResetError(f"attach stream chunk of {length} bytes: not a Docker stream")
                payload = await self._raw.readexactly(length)
            except asyncio.IncompleteReadError:
                partial = bytes(self._stdout)
                self._stdout.clear()
                raise asyncio.IncompleteReadError(partial, n) from None
            if stream == _STDOUT:
                self._stdout += payload
            elif stream == _STDERR:
                self._stderr_tail = (self._stderr_tail + payload)[-_STDERR_TAIL_BYTES:]
        data = bytes(self._stdout[:n])
        del self._stdout[:n]
        return data


def raw_socket(attach_socket: Any) -> socket.socket:
    """The plain socket under what `APIClient.attach_socket` returns (a socket or a SocketIO)."""
    raw = getattr(attach_socket, "_sock", attach_socket)
    if not isinstance(raw, socket.socket):
        raise TypeError(f"cannot use a {type(raw).__name__} attach socket (only Unix or TCP engines)")
    return raw


async def attached_streams(sock: socket.socket) -> tuple[DemuxedReader, asyncio.StreamWriter]:
    """The demultiplexed stdout reader and the stdin writer over an attach socket."""
    raw_reader, writer = await asyncio.open_connection(sock=sock)
    return DemuxedReader(raw_reader), writer
