"""One execution over the channel: `ready`, `exec`, any `http_request`s, then `result`."""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from typing import Any

from . import requests_shim
from .channel import (
    EXEC,
    HTTP_REQUEST,
    HTTP_RESPONSE,
    PROTOCOL_VERSION,
    READY,
    ChannelClosed,
    ChannelError,
    read_frame,
    write_frame,
)
from .engines import Engine
from .errors import ApiCallLimitExceeded
from .execute import CellRun
from .limits import LimitGuard, Limits, apply_rlimits, signals_deferred


class HostTransport:
    """Sends the `requests` shim's calls to the host and waits for each answer."""

    def __init__(self, channel_in: int, channel_out: int, max_calls: int, guard: LimitGuard) -> None:
        self.channel_in = channel_in
        self.channel_out = channel_out
        self.max_calls = max_calls
        self.guard = guard
        self.calls = 0
        self.owner = os.getpid()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != self.owner:
            raise requests_shim.exceptions.ConnectionError("HTTP calls are only possible from the process that runs the cell")
        if self.guard.first_hit is not None:
            raise self.guard.first_hit
        if self.calls >= self.max_calls:
            raise self.guard.hit(ApiCallLimitExceeded(f"the code made more than {self.max_calls} API calls"))
        self.calls += 1
        call_id = self.calls
        with signals_deferred():
            write_frame(self.channel_out, {"type": HTTP_REQUEST, "call_id": call_id, **request})
        while True:
            # waiting may be cut short by a time limit; a frame, once started, is read whole
            select.select([self.channel_in], [], [])
            with signals_deferred():
                message = read_frame(self.channel_in)
            if message["type"] == HTTP_RESPONSE and message.get("call_id") == call_id:
                return message


def _take_channel(fd_in: int, fd_out: int) -> tuple[int, int]:
    """Move the channel to fresh descriptors and point the originals at /dev/null.

    Anything that writes to fd 1 behind the runner's back (a child process, a C library)
    then cannot corrupt the frames.
    """
    channel_in, channel_out = os.dup(fd_in), os.dup(fd_out)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, fd_in)
    os.dup2(devnull, fd_out)
    os.close(devnull)
    return channel_in, channel_out


def serve_one(fd_in: int, fd_out: int, engine: Engine, lock_down: Callable[[], None] | None = None) -> None:
    """Hold one conversation on `fd_in`/`fd_out` and run the cell it carries.

    `lock_down` runs after the runner's own set-up, right before the code (an audit hook).
    """
    channel_in, channel_out = _take_channel(fd_in, fd_out)
    owner = os.getpid()
    write_frame(channel_out, {"type": READY, "protocol": PROTOCOL_VERSION, "pid": owner, "mode": engine.mode})
    message = read_frame(channel_in)
    if message["type"] != EXEC:
        raise ChannelError(f"expected an exec message, got {message['type']!r}")
    limits = Limits.from_message(message.get("limits"))
    apply_rlimits(limits)
    run = CellRun(engine, message, limits)
    requests_shim.install_transport(HostTransport(channel_in, channel_out, limits.max_api_calls, run.guard))
    if lock_down is not None:
        lock_down()
    result = run.run()
    if os.getpid() != owner:  # a process the code forked: only the runner itself answers
        os._exit(0)
    try:
        write_frame(channel_out, result)
    except ChannelClosed:
        raise
    except (ChannelError, MemoryError) as exc:
        failed = {"ok": False, "stdout": "", "traceback": None, "error": f"SandboxError: the result could not be sent ({exc})"}
        write_frame(channel_out, {**result, **failed, "error_type": "SandboxError"})
