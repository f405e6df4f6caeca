"""Ending the processes of an execution: the code's process group, then whatever it left.

The supervisor is a child subreaper (`kernel.adopt_orphans`), so a process whose parent
dies is re-parented to it, wherever it moved (another process group, its own session):
killing its children round after round, until none is left, ends the whole tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

_SWEEP_ROUNDS = 100
_SWEEP_PAUSE_S = 0.001


def ended_status(pid: int) -> int | None:
    """The status word of the child `pid` if it has ended (it stays unreaped), else None."""
    ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if ended is None:
        return None
    if ended.si_code == os.CLD_EXITED:
        return (ended.si_status & 0xFF) << 8
    return ended.si_status & 0x7F


def kill_and_reap(pid: int) -> tuple[int, Any] | None:
    """SIGKILL the process group led by the child `pid` and the child itself, then reap it.

    Returns its status word and resource usage, or None when it was reaped already.
    """
    for kill in (os.killpg, os.kill):  # the child may have left its group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)
    try:
        _, status, usage = os.wait4(pid, 0)
    except ChildProcessError:
        return None
    return status, usage


def _children() -> list[int]:
    """This process's children, from /proc (orphans adopted as a subreaper)."""
    me, found, entries = os.getpid(), [], []
    with contextlib.suppress(OSError):
        entries = os.listdir("/proc")
    for entry in entries:
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    if int(handle.read().rsplit(b")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
    return found


def sweep_orphans() -> None:
    """Kill and reap every child left (processes the code left behind, re-parented to us)."""
    for _ in range(_SWEEP_ROUNDS):
        try:
            if os.waitpid(-1, os.WNOHANG)[0] != 0:
                continue
        except ChildProcessError:
            return
        children = _children()
        for pid in children:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
        if not children:  # one is exiting, or /proc did not show it yet
            time.sleep(_SWEEP_PAUSE_S)
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, 0)
