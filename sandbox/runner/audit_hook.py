"""A PEP 578 audit hook: the last layer of the process backend (standard library only).

Installed in a child just before the code runs (on `process` and `docker` alike), it
refuses, with a `PermissionError` the code sees: process creation, signals to other
processes, sockets, ctypes, the garbage collector's object walks, writing or changing
anything outside the working directory, and reading or listing outside it and the Python
installation. Paths are resolved the way the kernel will: a relative name given with a
`dir_fd` against that descriptor (read back from /proc/self/fd), a descriptor given as a
path as what it points at. The `open` event does not carry its `dir_fd`, so a relative
`open` must be allowed against the working directory and against every directory the
process holds open. The pidfd calls, which raise no audit event at all, are taken out of
`os`, `posix`, `signal` and `_signal` when the hook is installed.

An audit hook is not a security boundary (code that reaches raw memory can remove it,
and a module can be built afresh from its spec); it turns the common escape attempts
into clear errors and backs up the operating-system layers, which are.
"""

from __future__ import annotations

import os
import resource
import stat
import sys
from collections.abc import Callable, Iterable
from typing import Any

_REFUSED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen", "pty.spawn",
    "os.kill", "os.killpg", "signal.pthread_kill",
    "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg", "socket.sethostname",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.remote_exec",
    "winreg.OpenKey", "os.startfile",
})  # fmt: skip
_REFUSED_PREFIXES = ("ctypes.",)
_REFUSED_IMPORTS = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "_testcapi", "_testinternalcapi"})
# events whose path arguments must lie inside the working directory: (path position,
# position of the dir_fd it is relative to, or None)
_WRITE_EVENTS = {
    "os.mkdir": ((0, 2),), "os.rmdir": ((0, 1),), "os.remove": ((0, 1),), "os.rename": ((0, 2), (1, 3)),
    "os.replace": ((0, 2), (1, 3)), "os.chmod": ((0, 2),), "os.chown": ((0, 3),), "os.link": ((0, 2), (1, 3)),
    "os.symlink": ((0, None), (1, 2)), "os.truncate": ((0, None),), "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),), "os.removexattr": ((0, None),), "shutil.rmtree": ((0, 1),),
    "shutil.copyfile": ((1, None),), "shutil.copytree": ((1, None),), "shutil.move": ((1, None),),
}  # fmt: skip
_READ_EVENTS = {
    "os.listdir": ((0, None),), "os.scandir": ((0, None),), "os.listxattr": ((0, None),), "os.getxattr": ((0, None),),
    "glob.glob": ((0, None),), "glob.glob/2": ((0, 3), (2, 3)),
}  # fmt: skip
_UNSEEN_CALLS = (("os", "pidfd_open"), ("posix", "pidfd_open"), ("signal", "pidfd_send_signal"), ("_signal", "pidfd_send_signal"))
"""Calls that raise no audit event: removed from the code's modules instead."""
_MAX_FDS = 4096
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


def _within(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


class _Unresolvable(Exception):
    pass


def _fd_target(fd: int) -> str | None:
    """What descriptor `fd` points at, as the kernel sees it; None for no path (a pipe, a bad fd)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        try:
            os.fstat(fd)
        except OSError:
            return None  # not open: the call fails on its own
        raise _Unresolvable(f"descriptor {fd}") from None
    return target if target.startswith("/") else None


def _resolved(path: Any, dir_fd: Any = None) -> str | None:
    """The real absolute path an event argument names; None where it names no file."""
    if path is None:
        return None
    if isinstance(path, int):
        return _fd_target(path)
    text = os.fsdecode(os.fspath(path))
    if not os.path.isabs(text) and isinstance(dir_fd, int) and dir_fd >= 0:
        base = _fd_target(dir_fd)
        if base is None:
            return None
        text = os.path.join(base, text)
    return os.path.realpath(text)


def _open_directories() -> list[int]:
    """Every descriptor of this process that is open on a directory."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    found = []
    for fd in range(_MAX_FDS if limit == resource.RLIM_INFINITY else min(limit, _MAX_FDS)):
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                found.append(fd)
        except OSError:
            pass
    return found


def python_roots() -> tuple[str, ...]:
    """Where this interpreter's standard library lives (what imports need to read)."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    roots.update(os.path.realpath(p) for p in sys.path if p and os.path.isabs(p))
    roots.add(os.path.dirname(os.path.realpath(__file__)))  # the runner package itself
    return tuple(sorted(roots))


def make_hook(workdir: str, read_roots: tuple[str, ...]) -> Callable[[str, tuple[Any, ...]], None]:
    """The hook function (kept apart from `install` so that it can be tested on its own)."""
    writable = (os.path.realpath(workdir),)
    readable = writable + tuple(os.path.realpath(root) for root in read_roots) + _DEVICES

    def refuse(event: str, detail: str = "") -> None:
        raise PermissionError(f"{event}{detail} is not allowed in the sandbox")

    def check(event: str, path: Any, dir_fd: Any, roots: tuple[str, ...]) -> None:
        try:
            resolved = _resolved(path, dir_fd)
        except _Unresolvable as exc:
            refuse(event, f" on {exc} (cannot tell where it points)")
        if resolved is not None and not _within(resolved, roots):
            refuse(event, f" on {resolved!r}")

    def check_paths(event: str, args: tuple[Any, ...], positions: tuple[tuple[int, int | None], ...], roots: tuple[str, ...]) -> None:
        for position, dir_fd_position in positions:
            if position < len(args):
                dir_fd = args[dir_fd_position] if dir_fd_position is not None and dir_fd_position < len(args) else None
                check(event, args[position], dir_fd, roots)

    def check_open(path: Any, roots: tuple[str, ...]) -> None:
        check("open", path, None, roots)
        if path is not None and not isinstance(path, int) and not os.path.isabs(os.fspath(path)):  # relative to any dir_fd?
            for fd in _open_directories():
                check("open", path, fd, roots)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _REFUSED_EVENTS or event.startswith(_REFUSED_PREFIXES):
            refuse(event)
        elif event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE_FLAGS)
            check_open(path, writable if writing else readable)
        elif event == "import" and args and args[0] in _REFUSED_IMPORTS:
            refuse("import", f" of {args[0]!r}")
        elif event in _WRITE_EVENTS:
            check_paths(event, args, _WRITE_EVENTS[event], writable)
        elif event in _READ_EVENTS:
            check_paths(event, args, _READ_EVENTS[event], readable)

    return hook


def install(workdir: str, read_roots: tuple[str, ...]) -> None:
    """Add the hook to this interpreter (for good: audit hooks cannot be removed), and take
    the calls it cannot see out of the code's modules."""
    for module, name in _UNSEEN_CALLS:
        if module in sys.modules:
            sys.modules[module].__dict__.pop(name, None)
    sys.addaudithook(make_hook(workdir, read_roots))
