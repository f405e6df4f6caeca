"""The process that runs a cell: a child of the supervisor that holds nothing but its own pipes.

It is forked before the execution is known (`supervise.prepare`), so neither the host's
channel nor the execution's key ever exists in it. Its descriptors: /dev/null as 0, 1
and 2, then four pipes to the supervisor (`CELL_FDS`): its inbox (the `exec`, then the
`http_response`s), its outbox (`http_request`s, then one `result` without the output),
and its stdout and stderr, which the supervisor captures as they are written. It sends a
`result` only when the code failed; a success is a clean exit with nothing to say. Every
limit it enforces is also made visible to the supervisor (the call over the cap is sent
before it is refused, output over the cap is written before it is cut), so code that
swallows a limit and exits cleanly still fails. It dies with the supervisor (parent-death
signal), leads a process group of its own, which the supervisor kills when the execution
ends, and runs under a seccomp filter that lets it signal no process but itself
(`kernel.refuse_signals_to_others`). The supervisor decides the verdict (see `worker`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
from collections.abc import Callable
from typing import Any, NoReturn

from . import confine, kernel, requests_shim
from .channel import EXEC, HTTP_REQUEST, HTTP_RESPONSE, ChannelError, read_frame, write_frame
from .engines import Engine
from .errors import ApiCallLimitExceeded
from .execute import CellRun
from .limits import ALARM_SIGNALS, LimitGuard, Limits, apply_rlimits, signals_deferred

_WARM_UP = {"code": "import json\nprint(json.dumps({'warm': [1, 2.5, 'up']}))\n", "replay": [], "preset": {}}
CELL_FDS = (3, 4, 5, 6)
"""Where the cell's inbox, outbox, stdout and stderr pipes are in its descriptor table."""
_SCRATCH_FD = 64
_SETUP_FAILED = 70


class PipeTransport:
    """Sends the `requests` shim's calls to the supervisor and waits for each answer."""

    def __init__(self, inbox: int, outbox: int, max_calls: int, guard: LimitGuard) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.max_calls = max_calls
        self.guard = guard
        self.calls = 0
        self.owner = os.getpid()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != self.owner:
            raise requests_shim.exceptions.ConnectionError("HTTP calls are only possible from the process that runs the cell")
        if self.guard.first_hit is not None:
            raise self.guard.first_hit
        self.calls += 1
        call_id = self.calls
        with signals_deferred():  # over the cap too: the supervisor counts it, and does not pass it on
            write_frame(self.outbox, {"type": HTTP_REQUEST, "call_id": call_id, **request})
        if self.calls > self.max_calls:
            raise self.guard.hit(ApiCallLimitExceeded(f"the code made more than {self.max_calls} API calls"))
        while True:
            # waiting may be cut short by a time limit; a frame, once started, is read whole
            select.select([self.inbox], [], [])
            with signals_deferred():
                message = read_frame(self.inbox)
            if message["type"] == HTTP_RESPONSE and message.get("call_id") == call_id:
                return message


def _keep_only(ends: tuple[int, ...]) -> None:
    """Move `ends` to `CELL_FDS`, /dev/null on 0-2, and close every other descriptor."""
    scratch = [fcntl.fcntl(fd, fcntl.F_DUPFD, _SCRATCH_FD) for fd in ends]
    for fd, target in zip(scratch, CELL_FDS, strict=True):
        os.dup2(fd, target, inheritable=False)
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    keep = {0, 1, 2, *CELL_FDS}
    try:
        held = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        os.closerange(max(keep) + 1, 65536)
        held = [*scratch, devnull]
    for fd in held:
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _warm_up(engine: Engine) -> None:
    """Run a trivial cell, its output dropped, while waiting: the memory pages that running a cell
    writes to are copied from the parent now (copy-on-write), not on the next execution's clock."""
    CellRun(engine, _WARM_UP, Limits()).run()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, ALARM_SIGNALS)


def run_cell(engine: Engine, lock_down: Callable[[], None] | None, ends: tuple[int, int, int, int], parent: int) -> NoReturn:
    """Body of the forked cell process: wait for the `exec`, run it, report, exit."""
    status = _SETUP_FAILED
    try:
        kernel.die_with_parent()
        if os.getppid() != parent:  # the supervisor died before the line above
            return os._exit(status)
        os.setpgid(0, 0)
        _keep_only(ends)
        kernel.refuse_signals_to_others()  # kill/tgkill to itself only; no pidfd, ptrace, process_vm_*
        inbox, outbox, stdout, stderr = CELL_FDS
        _warm_up(engine)
        message = read_frame(inbox)
        if message["type"] != EXEC:
            raise ChannelError(f"expected an exec message, got {message['type']!r}")
        limits = Limits.from_message(message.get("limits"))
        apply_rlimits(limits)
        run = CellRun(engine, message, limits, stdout, stderr)
        requests_shim.install_transport(PipeTransport(inbox, outbox, limits.max_api_calls, run.guard))
        confine.forget_ctypes()
        if lock_down is not None:
            lock_down()
        owner = os.getpid()
        result = run.run()
        if os.getpid() != owner:  # a process the code forked: only the cell process reports
            return os._exit(0)
        if not result["ok"]:
            for captured in ("stdout", "stderr"):  # the supervisor has those already
                result.pop(captured, None)
            write_frame(outbox, result)
        status = 0
    finally:
        os._exit(status)
