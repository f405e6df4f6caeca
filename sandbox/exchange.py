"""One execution's conversation with a runner, seen from the host, for every backend.

The runner is treated as untrusted: every field of its `result` is checked and bounded,
the call cap is enforced here too, and the whole conversation has a hard deadline a
little after the runner's own. Whatever goes wrong ends as a failed `ExecutionResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    RESULT,
    ChannelClosed,
    ChannelError,
    Message,
    read_message,
    ready_pid,
    write_message,
)
from sandbox.tool_calls import ToolCallServer, too_large_response

GRACE_S = 1.0
"""How long after the time limit the host waits for the runner's own timeout report."""
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
) -> ExchangeOutcome:
    """Send `cell` to a fresh runner, serve its calls, collect its result.

    `exec` is sent at once; the runner's `ready` (its pid, handed to `on_ready` so the
    caller can kill it) is read after that, saving a round trip.
    """
    calls = ToolCallServer(tools, limits.max_api_calls)
    started = time.perf_counter()

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
            message = await _converse(reader, writer, _exec_message(cell, limits), calls, on_ready)
    except TimeoutError:
        reason = f"the code ran longer than the {limits.timeout_s:g} s time limit and was killed"
        return failed("ExecutionTimeout", reason, timed_out=True)
    except ChannelClosed:
        return failed("SandboxCrash", "the sandbox process ended without a result (killed by a limit, or crashed)")
    except ChannelError as exc:
        return failed("SandboxCrash", f"the sandbox broke the protocol ({exc})")
    result = _checked_result(message, limits, calls, backend, time.perf_counter() - started)
    return ExchangeOutcome(result, finished=True)


def _exec_message(cell: Cell, limits: SandboxLimits) -> Message:
    return {
        "type": EXEC,
        "code": cell.code,
        "replay": list(cell.replay),
        "preset": dict(cell.preset),
        "limits": limits.model_dump(),
    }


async def _converse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    exec_message: Message,
    calls: ToolCallServer,
    on_ready: Callable[[int], None] | None,
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
    reading: asyncio.Future[Message] = asyncio.ensure_future(read_message(reader))
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
            reading = asyncio.ensure_future(read_message(reader))
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
