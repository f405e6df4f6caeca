"""Run one `exec` message: replay earlier steps silently, run the code, describe the outcome."""

from __future__ import annotations

import json
import sys
import time
import traceback
from types import CodeType, TracebackType
from typing import Any

from .engines import Engine
from .errors import CellRejected, SandboxLimitExceeded
from .limits import CappedOutput, LimitGuard, Limits, peak_memory_kb

CODE_FILENAME = "<cell>"
_TRACEBACK_FRAMES = 8
_MESSAGE_CHARS = 500
_SOURCE_LINE_CHARS = 200


def replay_filename(step: int) -> str:
    return f"<replay step {step}>"


class CellRun:
    """The state of one execution: sources by file name, output, limit guard, namespace."""

    def __init__(self, engine: Engine, message: dict[str, Any], limits: Limits, stdout_fd: int | None = None, stderr_fd: int | None = None) -> None:
        replay = [str(source) for source in message.get("replay") or []]
        self.replay_steps = {replay_filename(step): step for step in range(1, len(replay) + 1)}
        self.sources = {replay_filename(step): source for step, source in enumerate(replay, 1)}
        self.sources[CODE_FILENAME] = str(message.get("code") or "")
        self.engine = engine
        self.limits = limits
        self.guard = LimitGuard(limits)
        self.output = CappedOutput(limits.output_bytes, self.guard, stdout_fd)
        self.errors = CappedOutput(limits.output_bytes, self.guard, stderr_fd)
        # a JSON round trip gives the code its own copies of the preset values
        self.preset = json.loads(json.dumps(message.get("preset") or {}))
        self.current = CODE_FILENAME

    def run(self) -> dict[str, Any]:
        """Execute everything and return the `result` message."""
        started = time.perf_counter()
        failure: BaseException | None = None
        saved_stdout, saved_stderr = sys.stdout, sys.stderr
        namespace: dict[str, Any] = {}
        try:
            try:
                compiled = self._compile_all()
                namespace = self.engine.new_globals(self.output, self.preset)
                sys.stdout, sys.stderr = self.output, self.errors
                self.guard.arm()
                for filename, code in compiled:
                    self.current = filename
                    self.output.muted = self.errors.muted = filename != CODE_FILENAME
                    exec(code, namespace)
            finally:
                self.guard.disarm()
        except BaseException as exc:  # noqa: BLE001 - everything the code raises is reported
            self.guard.disarm()
            failure = exc
        finally:
            sys.stdout, sys.stderr = saved_stdout, saved_stderr
        # drop what the code built before describing the outcome: it may be what used the memory
        namespace.clear()
        if self.guard.first_hit is not None:
            failure = self.guard.first_hit
        return self._result(failure, time.perf_counter() - started)

    def _compile_all(self) -> list[tuple[str, CodeType]]:
        # replays first, in order, then the code (dicts keep insertion order)
        return [(filename, self.engine.compile(source, filename)) for filename, source in self.sources.items()]

    def _result(self, failure: BaseException | None, duration_s: float) -> dict[str, Any]:
        result: dict[str, Any] = {
            "type": "result",
            "ok": failure is None,
            "stdout": self.output.getvalue(),
            "stdout_truncated": self.output.truncated,
            "stderr": self.errors.getvalue(),
            "error": None,
            "error_type": None,
            "traceback": None,
            "timed_out": isinstance(failure, SandboxLimitExceeded) and failure.timed_out,
            "duration_s": duration_s,
            "peak_memory_kb": peak_memory_kb(),
        }
        if failure is not None:
            result.update(self._describe(failure))
        return result

    def _describe(self, failure: BaseException) -> dict[str, Any]:
        if isinstance(failure, CellRejected):
            error_type, message, filename = failure.error_type, failure.message, failure.filename
            where = f" (line {failure.lineno})" if failure.lineno else ""
            trace = self._format_frames([(filename, failure.lineno, None)], f"{error_type}: {message}")
        else:
            error_type, message = type(failure).__name__, _one_line(failure, self.limits)
            filename, where = self.current, ""
            trace = self._format_frames(self._user_frames(failure.__traceback__), f"{error_type}: {message}")
        if filename in self.replay_steps:
            where += f" (while replaying step {self.replay_steps[filename]})"
        error = f"{error_type}: {message}{where}" if message else f"{error_type}{where}"
        return {"error": error[: _MESSAGE_CHARS + 80], "error_type": error_type, "traceback": trace}

    def _user_frames(self, tb: TracebackType | None) -> list[tuple[str, int | None, str | None]]:
        return [
            (frame.f_code.co_filename, lineno, frame.f_code.co_name)
            for frame, lineno in traceback.walk_tb(tb)
            if frame.f_code.co_filename in self.sources
        ]

    def _format_frames(self, frames: list[tuple[str, int | None, str | None]], last_line: str) -> str:
        runs: list[list[Any]] = []  # [frame, times repeated in a row]
        for frame in frames:
            if runs and runs[-1][0] == frame:
                runs[-1][1] += 1
            else:
                runs.append([frame, 1])
        lines = ["Traceback (most recent call last):"]
        if len(runs) > _TRACEBACK_FRAMES:
            lines.append(f"  ... {len(runs) - _TRACEBACK_FRAMES} earlier frames not shown")
            runs = runs[-_TRACEBACK_FRAMES:]
        for (filename, lineno, function), repeated in runs:
            lines.append(f'  File "{filename}", line {lineno}' + (f", in {function}" if function else ""))
            source_lines = self.sources[filename].splitlines()
            if lineno and 0 < lineno <= len(source_lines):
                lines.append("    " + source_lines[lineno - 1].strip()[:_SOURCE_LINE_CHARS])
            if repeated > 1:
                lines.append(f"  [the frame above repeated {repeated - 1} more times]")
        lines.append(last_line)
        return "\n".join(lines)


def _one_line(exc: BaseException, limits: Limits) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) and not text:
        text = f"the code exceeded the {limits.memory_mb} MB memory limit"
    return text[:_MESSAGE_CHARS]
