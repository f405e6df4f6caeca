"""One execution's conversation with a runner, seen from the host, for every backend.

The runner is treated as untrusted: every frame after `exec` must carry the seal of the
execution's key (which only the runner's supervisor holds, never the code), every field
of its `result` is checked and bounded, the call cap is enforced here too, the channel
must close right after the one `result`, and the whole conversation has a hard deadline
a little after the runner's own. Whatever goes wrong ends as a failed `ExecutionResult`:
one extra frame, a frame without the seal or garbage is never a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codetool_kernel.errors import SandboxError
from codetool_kernel.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler
from codetool_kernel.text import truncate
from sandbox.channel import (
    EXEC,
    HTTP_REQUEST,
    KEY_BYTES,
    RESULT,
    ChannelClosed,
    ChannelError,
    Message,
    read_message,
    read_sealed_message,
    ready_pid,
    write_message,
)
from sandbox.tool_calls import ToolCallServer, too_large_response

GRACE_S = 2.0
"""How long after the time limit the host waits for the runner's own timeout report."""
VIOLATION = "SandboxViolation"
_ERROR_CHARS = 600
_TRACEBACK_CHARS = 4000


@dataclass
class ExchangeOutcome:
    """The result, and whether the runner delivered it (if not, its process must be killed)."""

    result: ExecutionResult
    finished: bool


async def run_exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    cell: Cell,
    limits: SandboxLimits,
    tools: ToolHandler | None,
    backend: str,
    on_ready: Callable[[int], None] | None = None,
    await_close: bool = True,
) -> ExchangeOutcome:
    """Send `cell` to a fresh runner, serve its calls, collect its result.

    `exec` is sent at once; the runner's `ready` (its pid, handed to `on_ready` so the
    caller can kill it) is read after that, saving a round trip. With `await_close`, the
    channel must then close with nothing more on it. (A container's stdout closes only
    when its init has exited, tens of milliseconds later; by the time the result is sent,
    every process that ran code has been killed and reaped by the supervisor, so nothing
    is left that could write after it.)
    """
    calls = ToolCallServer(tools, limits.max_api_calls)
    started = time.perf_counter()
    key = secrets.token_bytes(KEY_BYTES)

    def failed(error_type: str, reason: str, timed_out: bool = False) -> ExchangeOutcome:
        result = ExecutionResult(
            ok=False,
            error=f"{error_type}: {reason}",
            error_type=error_type,
            timed_out=timed_out,
            duration_s=time.perf_counter() - started,
            api_calls=calls.calls,
            backend=backend,
        )
        return ExchangeOutcome(result, finished=False)

    try:
        async with asyncio.timeout(limits.timeout_s + GRACE_S):
            message = await _converse(reader, writer, _exec_message(cell, limits, key), calls, on_ready, key)
            if await_close:
                await _closed_after_result(reader)
    except TimeoutError:
        reason = f"the code ran longer than the {limits.timeout_s:g} s time limit and was killed"
        return failed("ExecutionTimeout", reason, timed_out=True)
    except ChannelClosed:
        return failed("SandboxCrash", "the sandbox process ended without a result (killed by a limit, or crashed)")
    except ChannelError as exc:
        return failed(VIOLATION, f"the sandbox broke the protocol ({exc})")
    result = _checked_result(message, limits, calls, backend, time.perf_counter() - started)
    return ExchangeOutcome(result, finished=True)


def _exec_message(cell: Cell, limits: SandboxLimits, key: bytes) -> Message:
    return {
        "type": EXEC,
        "code": cell.code,
        "replay": list(cell.replay),
        "preset": dict(cell.preset),
        "limits": limits.model_dump(),
        "key": key.hex(),
    }


async def _closed_after_result(reader: asyncio.StreamReader) -> None:
    """Wait for the end of the channel after `result`; `ChannelError` if anything else comes."""
    try:
        await read_message(reader)
    except ChannelClosed:
        return
    raise ChannelError("more came after the result")


async def _converse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    exec_message: Message,
    calls: ToolCallServer,
    on_ready: Callable[[int], None] | None,
    key: bytes,
) -> Message:
    try:
        await write_message(writer, exec_message)
    except ChannelClosed:
        raise
    except ChannelError as exc:
        raise SandboxError(f"the cell cannot be sent to the sandbox: {exc}") from None
    pid = ready_pid(await read_message(reader))
    if on_ready is not None:
        on_ready(pid)
    received = 1
    reading: asyncio.Future[Message] = asyncio.ensure_future(read_sealed_message(reader, key, received))
    answering: asyncio.Task[Message] | None = None
    try:
        while True:
            waiting = {reading} if answering is None else {reading, answering}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if answering is not None and answering in done:
                await _send_answer(writer, answering.result())
                answering = None
            if reading not in done:
                continue
            message = reading.result()
            if message["type"] == RESULT:
                return message
            if message["type"] != HTTP_REQUEST:
                raise ChannelError(f"unexpected {message['type']!r} message from the runner")
            if answering is not None:  # the runner stopped waiting for it (time limit)
                answering.cancel()
            answering = asyncio.create_task(calls.answer(message))
            received += 1
            reading = asyncio.ensure_future(read_sealed_message(reader, key, received))
    finally:
        pending = [task for task in (reading, answering) if task is not None and not task.done()]
        for task in pending:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*pending, return_exceptions=True)


async def _send_answer(writer: asyncio.StreamWriter, answer: Message) -> None:
    try:
        await write_message(writer, answer)
    except ChannelClosed:
        raise
    except ChannelError as exc:
        await write_message(writer, too_large_response(answer, str(exc)))


def _text(value: Any, limit: int) -> str:
    return truncate(value if isinstance(value, str) else "", limit)


def _bounded_output(value: Any, limit: int) -> tuple[str, bool]:
    """The output cut to `limit` UTF-8 bytes, and whether it had to be cut."""
    encoded = (value if isinstance(value, str) else "").encode("utf-8", errors="replace")
    return encoded[:limit].decode("utf-8", errors="ignore"), len(encoded) > limit


def _checked_result(message: Message, limits: SandboxLimits, calls: ToolCallServer, backend: str, duration_s: float) -> ExecutionResult:
    stdout, cut = _bounded_output(message.get("stdout"), limits.output_bytes)
    truncated = bool(message.get("stdout_truncated")) or cut
    ok = message.get("ok") is True
    error = " ".join(_text(message.get("error"), _ERROR_CHARS).split()) or None
    error_type = _text(message.get("error_type"), 100) or None
    if ok and calls.over_limit:
        ok, error_type = False, "ApiCallLimitExceeded"
        error = f"ApiCallLimitExceeded: the code made more than {limits.max_api_calls} API calls"
    if not ok and error is None:
        error_type = error_type or "SandboxError"
        error = f"{error_type}: the runner reported a failure without saying why"
    peak = message.get("peak_memory_kb")
    return ExecutionResult(
        ok=ok,
        stdout=stdout,
        stderr=_bounded_output(message.get("stderr"), limits.output_bytes)[0],
        error=None if ok else error,
        error_type=None if ok else error_type,
        traceback=None if ok else _text(message.get("traceback"), _TRACEBACK_CHARS) or None,
        timed_out=message.get("timed_out") is True,
        stdout_truncated=truncated,
        duration_s=duration_s,
        peak_memory_kb=peak if isinstance(peak, int) and not isinstance(peak, bool) and peak >= 0 else None,
        api_calls=calls.calls,
        backend=backend,
    )
