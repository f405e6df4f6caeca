"""The wire protocol between the host and the in-sandbox runner (standard library only).

Every backend (`restricted`, `process` and `docker`) talks to the same runner
through a pair of byte streams: the runner reads frames on one (its fd 0) and writes
frames on the other (its fd 1). A frame is a 4-byte big-endian unsigned length followed
by that many bytes of UTF-8 JSON holding one object with a string field `type`.
Frames larger than the agreed limit (`MAX_FRAME_BYTES` unless both sides say otherwise)
are refused by the sender and by the receiver, which then treats the stream as broken.

One execution is one conversation:

    runner -> host  ready          {protocol, pid, mode}
    host -> runner  exec           {code, replay: [str], preset: {name: JSON},
                                    limits: {timeout_s, cpu_s, memory_mb,
                                             output_bytes, max_api_calls},
                                    key}
    runner -> host  http_request   {call_id, method, url, params, headers, json,
                                    data, timeout}                 (zero or more)
    host -> runner  http_response  {call_id, status, headers, body, error}
                                                                   (one per request)
    runner -> host  result         {ok, stdout, stdout_truncated, stderr, error,
                                    error_type, traceback, timed_out, duration_s,
                                    peak_memory_kb}

Every frame the runner sends after `exec` is sealed: its body starts with a 16-byte
HMAC-SHA256 (truncated) of the frame's sequence number (1, 2, ... as 8 big-endian bytes)
and the JSON that follows, keyed by `key` (64 hex digits, fresh per execution). The key
reaches the runner's supervisor only, never the process that runs the code (see
`worker`), so a frame the code manages to put on the channel is refused by the host.
After `result` the supervisor closes the channel; anything more is a broken protocol.
The same frames (unsealed) run between the supervisor and the code's process over
private pipes (see `cell`).

`pid` in `ready` is the supervisor's process id (also its process group: the host kills
the group when the execution ends). `http_response.error` is set, with a one-line
message, when the call never reached an API (refused or unreachable); the runner then
raises `requests.exceptions.ConnectionError`. The runner waits for one answer at a time;
a response whose `call_id` it no longer waits for is ignored. After `result` the runner
exits; a host that stops reading (timeout, crash) kills it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the host's side only: the runner does not load asyncio
    import asyncio

PROTOCOL_VERSION = 2
MAX_FRAME_BYTES = 16 * 1024 * 1024

READY = "ready"
EXEC = "exec"
HTTP_REQUEST = "http_request"
HTTP_RESPONSE = "http_response"
RESULT = "result"
MESSAGE_TYPES = frozenset({READY, EXEC, HTTP_REQUEST, HTTP_RESPONSE, RESULT})

_HEADER = struct.Struct(">I")
KEY_BYTES = 32
SEAL_BYTES = 16

Message = dict[str, Any]


class ChannelError(Exception):
    """A frame could not be encoded, was too large, malformed, or the stream broke mid-frame."""


class ChannelClosed(ChannelError):
    """The other side closed the stream at a frame boundary."""


def encode_frame(message: Message, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """The frame (header + JSON body) for `message`; refuses bodies over `max_bytes`."""
    if message.get("type") not in MESSAGE_TYPES:
        raise ChannelError(f"unknown message type {message.get('type')!r}")
    try:
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ChannelError(f"message {message['type']!r} is not valid JSON: {exc}") from None
    body = text.encode("utf-8", errors="replace")  # a lone surrogate becomes "?"
    if len(body) > max_bytes:
        raise ChannelError(f"{message['type']} frame of {len(body)} bytes exceeds the {max_bytes}-byte limit")
    return _HEADER.pack(len(body)) + body


def body_length(header: bytes, max_bytes: int = MAX_FRAME_BYTES) -> int:
    """The body length announced by a 4-byte header, checked against `max_bytes`."""
    (length,) = _HEADER.unpack(header)
    if length > max_bytes:
        raise ChannelError(f"incoming frame of {length} bytes exceeds the {max_bytes}-byte limit")
    return length


def decode_body(body: bytes) -> Message:
    """Parse a frame body into a message, checking that it is an object of a known type."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChannelError(f"frame is not UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("type") not in MESSAGE_TYPES:
        raise ChannelError("frame is not a message object with a known 'type'")
    return message


def seal(key: bytes, seq: int, body: bytes) -> bytes:
    """The seal of frame number `seq` with JSON `body`, under `key`."""
    return hmac.new(key, seq.to_bytes(8, "big") + body, hashlib.sha256).digest()[:SEAL_BYTES]


def encode_sealed_frame(message: Message, key: bytes, seq: int, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """The frame for `message` with its seal before the JSON."""
    body = encode_frame(message, max_bytes - SEAL_BYTES)[_HEADER.size :]
    return _HEADER.pack(SEAL_BYTES + len(body)) + seal(key, seq, body) + body


def open_sealed_body(body: bytes, key: bytes, seq: int) -> Message:
    """The message in a sealed frame body; `ChannelError` unless the seal is right for `seq`."""
    mac, payload = body[:SEAL_BYTES], body[SEAL_BYTES:]
    if len(mac) < SEAL_BYTES or not hmac.compare_digest(mac, seal(key, seq, payload)):
        raise ChannelError(f"frame {seq} does not carry the supervisor's seal (sent by someone else, or garbled)")
    return decode_body(payload)


class FrameBuffer:
    """Splits bytes read without blocking into messages (for peers that may stall mid-frame)."""

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_bytes = max_bytes
        self.pending = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """Every message completed by `data`; `ChannelError` on garbage or an oversized frame."""
        self.pending += data
        messages = []
        while len(self.pending) >= _HEADER.size:
            length = body_length(bytes(self.pending[: _HEADER.size]), self.max_bytes)
            if len(self.pending) < _HEADER.size + length:
                break
            messages.append(decode_body(bytes(self.pending[_HEADER.size : _HEADER.size + length])))
            del self.pending[: _HEADER.size + length]
        return messages


def ready_pid(message: Message) -> int:
    """The runner's pid from its `ready` message; `ChannelError` if it is not one we speak."""
    if message.get("type") != READY or message.get("protocol") != PROTOCOL_VERSION:
        raise ChannelError(f"expected a protocol-{PROTOCOL_VERSION} ready message, got {str(message)[:200]}")
    pid = message.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        raise ChannelError(f"ready message with an invalid pid {pid!r}")
    return pid


# --- synchronous helpers (the runner side: plain file descriptors) ---


def _read_exactly(fd: int, size: int, at_boundary: bool) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            if at_boundary and remaining == size:
                raise ChannelClosed("the other side closed the channel")
            raise ChannelError("the channel closed in the middle of a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_bytes: int = MAX_FRAME_BYTES) -> Message:
    """Block until one whole message has been read from `fd`."""
    length = body_length(_read_exactly(fd, _HEADER.size, at_boundary=True), max_bytes)
    return decode_body(_read_exactly(fd, length, at_boundary=False))


def write_frame(fd: int, message: Message, max_bytes: int = MAX_FRAME_BYTES) -> None:
    """Write one whole message to `fd`."""
    write_all(fd, encode_frame(message, max_bytes))


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to the blocking descriptor `fd`; `ChannelClosed` if the reader is gone."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed("the other side closed the channel") from None
        view = view[written:]


# --- asyncio helpers (the host side) ---


async def read_message(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> Message:
    """Read one message; `ChannelClosed` on a clean end of stream."""
    return decode_body(await _read_body(reader, max_bytes))


async def _read_body(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    try:
        header = await reader.readexactly(_HEADER.size)
    except EOFError as exc:  # asyncio.IncompleteReadError
        if getattr(exc, "partial", b""):
            raise ChannelError("the channel closed in the middle of a frame header") from None
        raise ChannelClosed("the other side closed the channel") from None
    except ConnectionError as exc:
        raise ChannelClosed(f"the channel broke: {exc}") from None
    length = body_length(header, max_bytes)
    try:
        body = await reader.readexactly(length)
    except (EOFError, ConnectionError):
        raise ChannelError("the channel closed in the middle of a frame") from None
    return body


async def read_sealed_message(reader: asyncio.StreamReader, key: bytes, seq: int, max_bytes: int = MAX_FRAME_BYTES) -> Message:
    """Read frame number `seq` of the runner, checking its seal (see the module docstring)."""
    return open_sealed_body(await _read_body(reader, max_bytes), key, seq)


async def write_message(writer: asyncio.StreamWriter, message: Message, max_bytes: int = MAX_FRAME_BYTES) -> None:
    """Write one message and wait until the transport accepted it."""
    frame = encode_frame(message, max_bytes)
    try:
        writer.write(frame)
        await writer.drain()
    except ConnectionError as exc:
        raise ChannelClosed(f"the channel broke: {exc}") from None
