"""The wire protocol: frames, limits, malformed input, end of stream; sync and asyncio sides."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Iterator

import pytest

from sandbox.channel import (
    HTTP_REQUEST,
    PROTOCOL_VERSION,
    READY,
    ChannelClosed,
    ChannelError,
    encode_frame,
    read_frame,
    read_message,
    ready_pid,
    write_frame,
    write_message,
)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_frames_round_trip_through_a_pipe(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    messages = [
        {"type": READY, "protocol": 1, "pid": 1234, "mode": "restricted"},
        {"type": HTTP_REQUEST, "call_id": 1, "url": "https://x.test/é", "params": {"q": ["a", "b"]}, "json": None},
    ]
    for message in messages:
        write_frame(write_end, message)
    assert [read_frame(read_end), read_frame(read_end)] == messages


def test_a_frame_is_a_big_endian_length_and_utf8_json() -> None:
    frame = encode_frame({"type": "result", "stdout": "ü"})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert json.loads(frame[4:].decode("utf-8")) == {"type": "result", "stdout": "ü"}


def test_oversized_frames_are_refused_on_both_sides(pipe: tuple[int, int]) -> None:
    with pytest.raises(ChannelError, match="exceeds the 100-byte limit"):
        encode_frame({"type": "result", "stdout": "x" * 200}, max_bytes=100)
    read_end, write_end = pipe
    os.write(write_end, struct.pack(">I", 5000) + b"{}")
    with pytest.raises(ChannelError, match="incoming frame of 5000 bytes exceeds the 1000-byte limit"):
        read_frame(read_end, max_bytes=1000)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "known 'type'"),
        (b'{"type": "launch_missiles"}', "known 'type'"),
    ],
)
def test_malformed_frames_are_refused(pipe: tuple[int, int], body: bytes, complaint: str) -> None:
    read_end, write_end = pipe
    os.write(write_end, struct.pack(">I", len(body)) + body)
    with pytest.raises(ChannelError, match=complaint):
        read_frame(read_end)


def test_unencodable_messages_are_refused() -> None:
    with pytest.raises(ChannelError, match="unknown message type"):
        encode_frame({"type": "nope"})
    with pytest.raises(ChannelError, match="not valid JSON"):
        encode_frame({"type": "result", "value": float("nan")})
    with pytest.raises(ChannelError, match="not valid JSON"):
        encode_frame({"type": "result", "value": object()})


def test_end_of_stream_at_a_boundary_is_closed_and_mid_frame_is_an_error(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    os.write(write_end, encode_frame({"type": "result"})[:-3])
    os.close(write_end)
    with pytest.raises(ChannelError, match="middle of a frame") as cut:
        read_frame(read_end)
    assert not isinstance(cut.value, ChannelClosed)
    empty_read, empty_write = os.pipe()
    os.close(empty_write)
    with pytest.raises(ChannelClosed):
        read_frame(empty_read)
    os.close(empty_read)


def test_ready_pid_checks_the_protocol_version() -> None:
    assert ready_pid({"type": READY, "protocol": PROTOCOL_VERSION, "pid": 4321}) == 4321
    stale = {"type": READY, "protocol": PROTOCOL_VERSION - 1, "pid": 4321}
    for bad in (stale, {"type": "result"}, {"type": READY, "protocol": PROTOCOL_VERSION, "pid": "1"}):
        with pytest.raises(ChannelError):
            ready_pid(bad)


async def test_asyncio_side_speaks_to_the_sync_side() -> None:
    host_socket, runner_socket = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=host_socket)
    try:
        await write_message(writer, {"type": "exec", "code": "print(1)"})
        received = await asyncio.to_thread(read_frame, runner_socket.fileno())
        assert received == {"type": "exec", "code": "print(1)"}
        write_frame(runner_socket.fileno(), {"type": "result", "ok": True})
        assert await read_message(reader) == {"type": "result", "ok": True}
        runner_socket.close()
        with pytest.raises(ChannelClosed):
            await read_message(reader)
    finally:
        writer.close()
        runner_socket.close()


async def test_asyncio_side_refuses_oversized_and_cut_frames() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(struct.pack(">I", 10_000))
    with pytest.raises(ChannelError, match="exceeds"):
        await read_message(reader, max_bytes=1000)
    cut = asyncio.StreamReader()
    cut.feed_data(encode_frame({"type": "result"})[:-2])
    cut.feed_eof()
    with pytest.raises(ChannelError, match="middle of a frame"):
        await read_message(cut)
