"""A PEP 578 audit hook: the last layer of the process backend (standard library only).

Installed in a child just before the code runs, it refuses, with a `PermissionError` the
code sees: process creation, signals to other processes, sockets, ctypes, the garbage
collector's object walks, writing or changing anything outside the working directory, and
reading or listing outside it and the Python installation. An audit hook is not a
security boundary (code that reaches raw memory can remove it); it turns the common
escape attempts into clear errors and backs up the operating-system layers, which are.
"""

from __future__ import annotations

import os
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
# events whose path arguments (the given positions) must lie inside the working directory
_WRITE_EVENTS = {
    "os.mkdir": (0,), "os.rmdir": (0,), "os.remove": (0,), "os.rename": (0, 1), "os.replace": (0, 1),
    "os.chmod": (0,), "os.chown": (0,), "os.link": (0, 1), "os.symlink": (0, 1), "os.truncate": (0,),
    "os.utime": (0,), "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,),
    "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,),
}  # fmt: skip
_READ_EVENTS = {"os.listdir": (0,), "os.scandir": (0,), "os.listxattr": (0,), "os.getxattr": (0,), "glob.glob": (0,)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


def _within(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _resolved(path: Any) -> str | None:
    """The real absolute path named by an event argument; None for a file descriptor."""
    if path is None or isinstance(path, int):
        return None
    return os.path.realpath(os.fsdecode(os.fspath(path)))


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

    def check_paths(event: str, args: tuple[Any, ...], positions: tuple[int, ...], roots: tuple[str, ...]) -> None:
        for position in positions:
            if position < len(args):
                path = _resolved(args[position])
                if path is not None and not _within(path, roots):
                    refuse(event, f" on {path!r}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _REFUSED_EVENTS or event.startswith(_REFUSED_PREFIXES):
            refuse(event)
        elif event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE_FLAGS)
            check_paths("open", (path,), (0,), writable if writing else readable)
        elif event == "import" and args and args[0] in _REFUSED_IMPORTS:
            refuse("import", f" of {args[0]!r}")
        elif event in _WRITE_EVENTS:
            check_paths(event, args, _WRITE_EVENTS[event], writable)
        elif event in _READ_EVENTS:
            check_paths(event, args, _READ_EVENTS[event], readable)

    return hook


def install(workdir: str, read_roots: tuple[str, ...]) -> None:
    """Add the hook to this interpreter (for good: audit hooks cannot be removed)."""
    sys.addaudithook(make_hook(workdir, read_roots))
