"""Per-execution bounds inside the runner: rlimits, time alarms and the capped output.

Time is enforced twice: here by signals that raise a limit exception inside the code (so
the output printed so far is kept), and by the host, which kills the process group when
the runner does not answer shortly after the deadline.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .channel import write_all
from .errors import CpuLimitExceeded, ExecutionTimeout, OutputLimitExceeded, SandboxLimitExceeded

ALARM_SIGNALS = {signal.SIGALRM, signal.SIGXCPU}
_REPEAT_S = 0.2
"""After a time limit fires, it fires again this often until the code gives up."""
_OPEN_FILES = 64
_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """The `limits` object of an `exec` message."""

    timeout_s: float = 30.0
    cpu_s: int = 30
    memory_mb: int = 1024
    output_bytes: int = 64_000
    max_api_calls: int = 100

    @classmethod
    def from_message(cls, data: dict[str, Any] | None) -> Limits:
        known = {name: value for name, value in (data or {}).items() if name in cls.__dataclass_fields__}
        return cls(**known)


def apply_rlimits(limits: Limits) -> None:
    """Bound this process's address space, CPU seconds, file sizes and open files."""
    memory = limits.memory_mb * 1024 * 1024
    cpu = max(1, int(limits.cpu_s))
    for which, soft, hard in (
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_CPU, cpu, cpu + 2),
        (resource.RLIMIT_FSIZE, _FILE_BYTES, _FILE_BYTES),
        (resource.RLIMIT_NOFILE, _OPEN_FILES, _OPEN_FILES),
    ):
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))


def peak_memory_kb() -> int:
    """The largest resident set this process has had, in KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold the time-limit signals while a frame is written or read, so no frame is cut."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ALARM_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class CappedOutput(io.TextIOBase):
    """A text stream that keeps at most `limit` UTF-8 bytes, or discards all while muted.

    With a `sink` descriptor, what it is given is also written there as it comes (the
    supervisor's capture, which holds even if this process is killed), up to the write
    that crosses the limit, and by this process only: a copy the code forked writes
    nowhere.
    """

    def __init__(self, limit: int, guard: LimitGuard, sink: int | None = None) -> None:
        super().__init__()
        self.limit = limit
        self.sink = sink
        self._owner = os.getpid()
        self.muted = False
        self.truncated = False
        self._guard = guard
        self._parts: list[str] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.muted:
            return len(text)
        data = text.encode("utf-8", errors="replace")
        room = self.limit - self._size
        if len(data) <= room:
            self._parts.append(text)
            self._size += len(data)
            self._forward(data)
            return len(text)
        self._parts.append(data[:room].decode("utf-8", errors="ignore"))
        self._size = self.limit
        self._forward(data[: room + 1])  # a byte over: the supervisor sees the limit crossed too
        self.truncated = True
        raise self._guard.hit(OutputLimitExceeded(f"the output exceeded the {self.limit}-byte limit"))

    def _forward(self, data: bytes) -> None:
        if self.sink is not None and data and os.getpid() == self._owner:
            write_all(self.sink, data)

    def getvalue(self) -> str:
        return "".join(self._parts)


class LimitGuard:
    """Arms the wall-clock and CPU alarms and remembers the first limit the code hit."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.first_hit: SandboxLimitExceeded | None = None
        self.armed = False

    def hit(self, exc: SandboxLimitExceeded) -> SandboxLimitExceeded:
        """Record `exc` (the first one wins) and return it for raising."""
        if self.first_hit is None:
            self.first_hit = exc
        return exc

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if not self.armed:
            return
        if signum == signal.SIGXCPU:
            raise self.hit(CpuLimitExceeded(f"the code used more than {self.limits.cpu_s} s of CPU time"))
        raise self.hit(ExecutionTimeout(f"the code ran longer than the {self.limits.timeout_s:g} s time limit"))

    def arm(self) -> None:
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGXCPU, self._on_alarm)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.limits.timeout_s, _REPEAT_S)

    def disarm(self) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.pthread_sigmask(signal.SIG_BLOCK, ALARM_SIGNALS)
