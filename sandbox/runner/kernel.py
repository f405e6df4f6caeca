"""The few process controls the supervisor needs that `os` lacks (Linux `prctl`, via ctypes).

ctypes is loaded once, when the runner starts, and the function kept here; the process
that runs a cell drops ctypes from `sys.modules` (`confine.forget_ctypes`) before the code
runs, and the audit hook refuses every ctypes call the code could make with it.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def _call(option: int, value: int) -> None:
    if _prctl(option, value, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}): {os.strerror(code)}")


def die_with_parent() -> None:
    """SIGKILL this process when the thread that forked it ends."""
    _call(_PR_SET_PDEATHSIG, signal.SIGKILL)


def adopt_orphans() -> None:
    """Become the parent of any descendant whose own parent dies (a child subreaper)."""
    _call(_PR_SET_CHILD_SUBREAPER, 1)


def not_dumpable() -> None:
    """No core dumps, and no ptrace or /proc/PID/{fd,mem} access by other unprivileged processes."""
    _call(_PR_SET_DUMPABLE, 0)
