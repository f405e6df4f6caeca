"""The supervisor of one execution: it alone holds the host's channel and decides the verdict.

The code under test runs in a child (`cell`), forked by `prepare_cell` before the
execution is known: the child never holds the host's channel, nor the key the host sends
with `exec` to seal every frame that comes back (see `channel`). The supervisor talks to
the host (`ready`, `exec`, the `http_request`s, `result`) and to its child over private
pipes, and treats the child as hostile: it may write anything to any descriptor it holds,
fork, close its pipes, exit with any status or stop answering. So the supervisor

* relays the child's `http_request`s (numbered 1, 2, ... and capped), answers back;
* captures the child's stdout and stderr itself, bounded by the output limit;
* enforces the time limit itself, a little after the child's own alarm;
* takes the verdict from what it observed: exit status, CPU time and peak memory from
  `wait4`, its capture, its clock, its call count. The child sends a `result` only to
  describe a failure (with `ok` false); success is a clean exit (status 0) with no
  result, nothing out of place on the pipes and no limit crossed. Garbage, an unknown
  frame, a result claiming success, anything after a result or a crash fail it;
* before it answers: kills the child's process group, reaps it, and kills and reaps
  every process the child left (orphans come back to it: it is a child subreaper).

The supervisor is not dumpable (no ptrace, no /proc/PID/fd of it for the child), and the
child dies with it. Plain-mode code can still end its own run early as a success with the
output it wrote (it could as well have finished normally); it cannot turn a limit, a
crash or a broken protocol into a success, nor answer the host in the supervisor's name.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import kernel, reap
from .cell import run_cell
from .channel import (
    EXEC,
    HTTP_REQUEST,
    HTTP_RESPONSE,
    KEY_BYTES,
    PROTOCOL_VERSION,
    READY,
    RESULT,
    ChannelError,
    FrameBuffer,
    Message,
    encode_frame,
    encode_sealed_frame,
    read_frame,
    write_all,
    write_frame,
)
from .engines import Engine
from .limits import Limits

SUPERVISOR_GRACE_S = 0.5
"""How long after the time limit the supervisor waits for the child's own timeout report."""
_READ_BYTES = 1 << 16
_DRAIN_READS = 64
_EXIT_SPIN_S = 0.002
_VIOLATION = "SandboxViolation"


@dataclass(frozen=True)
class PreparedCell:
    """A forked child waiting for its `exec`, and the supervisor's ends of its pipes."""

    pid: int
    inbox: int
    outbox: int
    stdout: int
    stderr: int


def prepare_cell(engine: Engine, lock_down: Callable[[], None] | None) -> PreparedCell:
    """Fork the child that will run the next cell (before the execution is known).

    `lock_down` runs in the child right before the code (an audit hook).
    """
    kernel.not_dumpable()
    kernel.adopt_orphans()
    inbox, outbox, stdout, stderr = os.pipe(), os.pipe(), os.pipe(), os.pipe()
    child_ends = (inbox[0], outbox[1], stdout[1], stderr[1])
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        run_cell(engine, lock_down, child_ends, parent)
    for fd in child_ends:
        os.close(fd)
    with contextlib.suppress(OSError):  # the child does it too; whichever comes first
        os.setpgid(pid, pid)
    return PreparedCell(pid, inbox[1], outbox[0], stdout[0], stderr[0])


def _take_channel(fd_in: int, fd_out: int) -> tuple[int, int]:
    """Move the channel to fresh descriptors and point the originals at /dev/null."""
    channel_in, channel_out = os.dup(fd_in), os.dup(fd_out)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, fd_in)
    os.dup2(devnull, fd_out)
    os.close(devnull)
    return channel_in, channel_out


def _execution_key(message: Message) -> bytes:
    try:
        key = bytes.fromhex(str(message.pop("key", "")))
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ChannelError(f"the exec message carries no {KEY_BYTES}-byte key")
    return key


def supervise(cell: PreparedCell, fd_in: int, fd_out: int, mode: str) -> None:
    """Hold one conversation with the host on `fd_in`/`fd_out`, the code running in `cell`."""
    channel_in, channel_out = _take_channel(fd_in, fd_out)
    supervision = None
    try:
        write_frame(channel_out, {"type": READY, "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "mode": mode})
        message = read_frame(channel_in)
        if message["type"] != EXEC:
            raise ChannelError(f"expected an exec message, got {message['type']!r}")
        key = _execution_key(message)
        supervision = _Supervision(cell, channel_in, channel_out, key, Limits.from_message(message.get("limits")))
        supervision.to_cell += encode_frame(message)
        result = supervision.watch()
        if result is not None:
            supervision.send(result)
    finally:
        if supervision is None or not supervision.reaped:  # a reaped pid may already be someone else's
            reap.kill_and_reap(cell.pid)
        os.close(channel_in)
        os.close(channel_out)


def serve_one(fd_in: int, fd_out: int, engine: Engine, lock_down: Callable[[], None] | None = None) -> None:
    """Fork the cell's child, then supervise one execution on `fd_in`/`fd_out`."""
    supervise(prepare_cell(engine, lock_down), fd_in, fd_out, engine.mode)


Failure = tuple[str, str, bool]
"""(error type, one-line message, timed out)"""


@dataclass
class _Observed:
    """What the supervisor saw of its child."""

    report: dict[str, Any] | None = None
    """The child's account of its failure (it sends none when the code succeeded)."""
    stopped: Failure | None = None
    """Why the supervisor killed the child: its deadline, or a protocol the child broke."""
    crossed: Failure | None = None
    """A limit the supervisor saw crossed (API calls, output) while the child went on."""
    status: int | None = None
    rusage: Any = None
    captured: dict[int, bytearray] = field(default_factory=dict)
    truncated: set[int] = field(default_factory=set)


class _Supervision:
    def __init__(self, cell: PreparedCell, channel_in: int, channel_out: int, key: bytes, limits: Limits) -> None:
        self.cell = cell
        self.channel_in = channel_in
        self.channel_out = channel_out
        self.key = key
        self.limits = limits
        self.sent = 0
        self.calls = 0
        self.reaped = False
        self.to_cell = bytearray()
        self.from_cell = FrameBuffer()
        self.from_host = FrameBuffer()
        self.seen = _Observed(captured={cell.stdout: bytearray(), cell.stderr: bytearray()})
        self.open_reads = {cell.outbox, cell.stdout, cell.stderr}
        self.started = self.ended = time.monotonic()
        self.deadline = self.started + limits.timeout_s + SUPERVISOR_GRACE_S
        for fd in (cell.inbox, *self.open_reads):
            os.set_blocking(fd, False)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)

    def send(self, message: Message) -> None:
        """Write one sealed frame to the host."""
        self.sent += 1
        try:
            frame = encode_sealed_frame(message, self.key, self.sent)
        except ChannelError as exc:  # a result too large for a frame
            failed = {"ok": False, "stdout": "", "stderr": "", "traceback": None, "error_type": "SandboxError"}
            frame = encode_sealed_frame({**message, **failed, "error": f"SandboxError: the result could not be sent ({exc})"}, self.key, self.sent)
        write_all(self.channel_out, frame)

    def stop(self, error_type: str, message: str, timed_out: bool = False) -> None:
        if self.seen.stopped is None:
            self.seen.stopped = (error_type, message, timed_out)

    def crossed(self, error_type: str, message: str) -> None:
        if self.seen.crossed is None:
            self.seen.crossed = (error_type, message, False)

    def watch(self) -> Message | None:
        """Serve the child until it ends or must be stopped; the result, or None if the host left."""
        while self.seen.stopped is None and not self._child_ended():
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.stop("ExecutionTimeout", f"the code ran longer than the {self.limits.timeout_s:g} s time limit and was killed", True)
                break
            reads = [*self.open_reads, self.wake_r, self.channel_in]
            writes = [self.cell.inbox] if self.to_cell else []
            readable, writable, _ = select.select(reads, writes, [], remaining)
            if self.wake_r in readable:
                os.read(self.wake_r, _READ_BYTES)
            if writable:
                self._write_to_cell()
            if self.channel_in in readable and not self._read_host():
                return None
            for fd in self.open_reads.intersection(readable):
                self._read_child(fd)
            if not self.open_reads:  # it closed its pipes: it is exiting (or hostile)
                self._await_exit_briefly()
        self.ended = time.monotonic()
        self.seen.status = reap.ended_status(self.cell.pid)  # ended on its own: that status, not our kill's
        reaped = reap.kill_and_reap(self.cell.pid)
        self.reaped = True
        if reaped is not None:
            self.seen.status = reaped[0] if self.seen.status is None else self.seen.status
            self.seen.rusage = reaped[1]
        reap.sweep_orphans()
        for fd in list(self.open_reads):  # what the child wrote before it ended (bounded: pipes hold little)
            for _ in range(_DRAIN_READS):
                if fd not in self.open_reads or not self._read_child(fd):
                    break
        if self.from_cell.pending:
            self.stop(_VIOLATION, f"the code's process left {len(self.from_cell.pending)} bytes of an unfinished frame")
        return self._verdict()

    def _child_ended(self) -> bool:
        return reap.ended_status(self.cell.pid) is not None

    def _await_exit_briefly(self) -> None:
        """Yield the CPU to the exiting child for a moment rather than sleep until SIGCHLD."""
        until = time.monotonic() + _EXIT_SPIN_S
        while time.monotonic() < until and not self._child_ended():
            os.sched_yield()

    def _write_to_cell(self) -> None:
        try:
            written = os.write(self.cell.inbox, self.to_cell[:_READ_BYTES])
        except BlockingIOError:
            return
        except OSError:  # the child is gone; its verdict comes from its exit
            self.to_cell.clear()
            return
        del self.to_cell[:written]

    def _read_host(self) -> bool:
        """Pass the host's answers on to the child; False when the host closed the channel."""
        data = os.read(self.channel_in, _READ_BYTES)
        if not data:
            return False
        for message in self.from_host.feed(data):
            if message["type"] != HTTP_RESPONSE:
                raise ChannelError(f"unexpected {message['type']!r} message from the host")
            self.to_cell += encode_frame(message)
        return True

    def _read_child(self, fd: int) -> bool:
        """Read what `fd` has; False once it has nothing more now (end of file or would block)."""
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return False
        if not data:
            self.open_reads.discard(fd)
            return False
        if fd == self.cell.outbox:
            try:
                for message in self.from_cell.feed(data):
                    self._take_message(message)
            except ChannelError as exc:
                self.stop(_VIOLATION, f"the code's process broke the runner's protocol ({exc})")
                self.open_reads.discard(fd)
            return True
        captured = self.seen.captured[fd]
        captured += data[: max(0, self.limits.output_bytes - len(captured))]
        if len(data) > len(captured) or fd in self.seen.truncated:  # (what is over the limit is read and dropped)
            self.seen.truncated.add(fd)
            self.crossed("OutputLimitExceeded", f"the output exceeded the {self.limits.output_bytes}-byte limit")
        return True

    def _take_message(self, message: Message) -> None:
        if self.seen.report is not None:
            self.stop(_VIOLATION, f"the code's process sent a {message['type']!r} frame after its result")
        elif message["type"] == RESULT and message.get("ok") is False:
            self.seen.report = message
        elif message["type"] == RESULT:
            self.stop(_VIOLATION, "the code's process claimed a success: only the supervisor says that")
        elif message["type"] != HTTP_REQUEST:
            self.stop(_VIOLATION, f"the code's process sent an unexpected {message['type']!r} frame")
        elif message.get("call_id") != self.calls + 1:
            self.stop(_VIOLATION, f"the code's process sent an API call out of order ({str(message.get('call_id'))[:20]})")
        else:
            self.calls += 1
            if self.calls > self.limits.max_api_calls:  # not passed on; the child fails it itself
                self.crossed("ApiCallLimitExceeded", f"the code made more than {self.limits.max_api_calls} API calls")
            else:
                self.send(message)

    def _verdict(self) -> Message:
        seen = self.seen
        stdout, stderr = (self._text(fd) for fd in (self.cell.stdout, self.cell.stderr))
        result: Message = {
            "type": RESULT,
            "ok": True,
            "stdout": stdout,
            "stdout_truncated": self.cell.stdout in seen.truncated,
            "stderr": stderr,
            "error": None,
            "error_type": None,
            "traceback": None,
            "timed_out": False,
            "duration_s": self.ended - self.started,
            "peak_memory_kb": seen.rusage.ru_maxrss if seen.rusage is not None else None,
        }
        failure = seen.stopped or self._exit_failure() or seen.crossed or self._limits_crossed()
        report = seen.report
        if report is not None and (failure is None or failure[0] == report.get("error_type")):
            described = {name: report.get(name) if isinstance(report.get(name), str) else None for name in ("error", "error_type", "traceback")}
            truncated = result["stdout_truncated"] or report.get("stdout_truncated") is True
            return {**result, **described, "ok": False, "timed_out": report.get("timed_out") is True, "stdout_truncated": truncated}
        if failure is None:
            return result
        error_type, message, timed_out = failure
        return {**result, "ok": False, "error": f"{error_type}: {message}", "error_type": error_type, "timed_out": timed_out}

    def _text(self, fd: int) -> str:
        data = bytes(self.seen.captured[fd])
        return data.decode("utf-8", errors="ignore" if fd in self.seen.truncated else "replace")

    def _exit_failure(self) -> Failure | None:
        """What the child's exit says, unless it was a clean one (status 0)."""
        status, usage = self.seen.status, self.seen.rusage
        if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return None
        if self.seen.report is not None:
            return (_VIOLATION, f"the code's process ended with {_describe_status(status)} after its result", False)
        if usage is not None and usage.ru_utime + usage.ru_stime >= self.limits.cpu_s:
            return ("CpuLimitExceeded", f"the code used more than {self.limits.cpu_s} s of CPU time", True)
        return ("SandboxCrash", f"the code's process ended without a result ({_describe_status(status)}: killed by a limit, or crashed)", False)

    def _limits_crossed(self) -> Failure | None:
        """A time or CPU limit the child went past, even if it then exited as if all was well."""
        usage = self.seen.rusage
        if self.ended - self.started >= self.limits.timeout_s:
            return ("ExecutionTimeout", f"the code ran longer than the {self.limits.timeout_s:g} s time limit", True)
        if usage is not None and usage.ru_utime + usage.ru_stime >= self.limits.cpu_s:
            return ("CpuLimitExceeded", f"the code used more than {self.limits.cpu_s} s of CPU time", True)
        return None


def _describe_status(status: int | None) -> str:
    if status is None:
        return "an unknown status"
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"
