"""The few process controls the runner needs that `os` lacks (Linux `prctl`, via ctypes).

ctypes is loaded once, when the runner starts, and the function kept here; the process
that runs a cell drops ctypes from `sys.modules` (`confine.forget_ctypes`) before the code
runs, and the audit hook refuses every ctypes call the code could make with it.

`refuse_signals_to_others` is the kernel's side of the audit hook's signal rules: a
seccomp filter under which `kill` and `tgkill` reach only the calling process, and
`tkill`, the pidfd calls, `ptrace`, `process_vm_readv`/`writev` and the `sigqueueinfo`
calls fail with EPERM. Unlike the hook, nothing the code does in Python can undo it (a
module rebuilt from its spec still makes the same system calls). On an architecture it
does not know (x86_64 and aarch64 only) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_ALLOW, _DENY = 0x7FFF0000, 0x00050000 | errno.EPERM
_NR_OFFSET, _ARCH_OFFSET, _ARG0_OFFSET = 0, 4, 16
_X32_BIT = 0x40000000
# (audit arch, kill, tgkill, refused outright: tkill ptrace process_vm_readv/writev rt_sigqueueinfo
#  rt_tgsigqueueinfo pidfd_send_signal pidfd_open pidfd_getfd)
_SYSCALLS = {
    "x86_64": (0xC000003E, 62, 234, (200, 101, 310, 311, 129, 297, 424, 434, 438)),
    "aarch64": (0xC00000B7, 129, 131, (130, 117, 270, 271, 138, 240, 424, 434, 438)),
}

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


def _signal_filter(machine: str, pid: int) -> list[tuple[int, int, int, int]]:
    """The BPF program (code, jump if true, jump if false, k) for `refuse_signals_to_others`."""
    arch, kill, tgkill, refused = _SYSCALLS[machine]
    deny, allow, own = "deny", "allow", "own"
    program: list[tuple[int, Any, Any, int]] = [(_LD_W_ABS, 0, 0, _ARCH_OFFSET), (_JEQ_K, 0, deny, arch), (_LD_W_ABS, 0, 0, _NR_OFFSET)]
    if machine == "x86_64":
        program.append((_JGE_K, deny, 0, _X32_BIT))
    program += [(_JEQ_K, own, 0, nr) for nr in (kill, tgkill)]
    program += [(_JEQ_K, deny, 0, nr) for nr in refused]
    program += [(_RET_K, 0, 0, _ALLOW), (_LD_W_ABS, 0, 0, _ARG0_OFFSET), (_JEQ_K, 0, deny, pid), (_RET_K, 0, 0, _ALLOW), (_RET_K, 0, 0, _DENY)]
    labels = {own: len(program) - 4, deny: len(program) - 1}
    labels[allow] = len(program) - 2

    def offset(at: int, target: Any) -> int:
        return target if isinstance(target, int) else labels[target] - at - 1

    return [(code, offset(at, jt), offset(at, jf), k) for at, (code, jt, jf, k) in enumerate(program)]


def refuse_signals_to_others() -> bool:
    """Install the seccomp filter described above on this process; False where it is unknown."""
    machine = platform.machine()
    if machine not in _SYSCALLS:
        return False
    program = _signal_filter(machine, os.getpid())
    instructions = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *op) for op in program))
    fprog = ctypes.create_string_buffer(struct.pack("HP", len(program), ctypes.addressof(instructions)))
    _call(_PR_SET_NO_NEW_PRIVS, 1)
    if _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"seccomp: {os.strerror(code)}")
    return True
