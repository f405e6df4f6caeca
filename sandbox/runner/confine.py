"""Operating-system confinement of a runner child (Linux; standard library only).

The process backend's fork server applies these layers in every child before it takes an
execution, so they cost nothing on the execution's path:

* `unprivileged user`: a server started as root moves each child to its own uid
  (`uid_base + slot`), so the process-count limit applies, the child cannot signal
  another execution or the server, and whatever it left running can be killed by uid;
* `private working directory`: a new user and mount namespace with a fresh, size-bounded
  tmpfs on the working directory, gone with the child (fallback: a per-child directory
  the server deletes);
* `network namespace`: a new, empty network namespace (no interface but a down loopback);
* capabilities are then all dropped and `no_new_privs` set.

Which layers the OS allows is found once, by a probe child at the server's start; the
server reports it to the host and children apply only those (a child that then fails one
exits before taking an execution). ctypes is used here and then removed from
`sys.modules`, so code run later cannot `import ctypes` without the audit hook seeing it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
from dataclasses import dataclass, replace
from typing import Any

LAYER_UID = "unprivileged user"
LAYER_WORKDIR = "private working directory"
LAYER_NETWORK = "network namespace"

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID, _MS_NODEV = 0x2, 0x4
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 1, 4, 38
_CAPABILITY_VERSION_3 = 0x20080522


@dataclass(frozen=True)
class Confinement:
    """What a child should do to itself; every field off means: only change directory."""

    workdir: str | None = None
    private_workdir: bool = False
    workdir_mb: int = 64
    uid_base: int | None = None
    uid_count: int = 0
    processes: int = 64
    """RLIMIT_NPROC of a child with its own uid (it counts threads too)."""
    unshare_net: bool = False
    audit_hook: bool = False
    """Install `audit_hook` right before the code runs (not an OS layer: never probed)."""
    own_pid_namespace: bool = False
    """The server runs in a pid namespace of its own (its /proc lists only the sandbox)."""

    @property
    def drops_uid(self) -> bool:
        return self.uid_base is not None and self.uid_count > 0

    def requested(self) -> list[str]:
        wanted = [(LAYER_UID, self.drops_uid), (LAYER_WORKDIR, self.private_workdir), (LAYER_NETWORK, self.unshare_net)]
        return [name for name, on in wanted if on]

    def keeping(self, layers: dict[str, str]) -> Confinement:
        """This confinement without the layers `layers` reports as not working."""
        works = {name for name, state in layers.items() if state == "on"}
        return replace(
            self,
            uid_base=self.uid_base if LAYER_UID in works else None,
            private_workdir=self.private_workdir and LAYER_WORKDIR in works,
            unshare_net=self.unshare_net and LAYER_NETWORK in works,
        )


def _ctypes_call(libc: Any, name: str, *args: Any) -> None:
    import ctypes

    if getattr(libc, name)(*args) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{name}: {os.strerror(code)}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _new_namespaces(libc: Any, config: Confinement, workdir: str) -> None:
    """New user namespace (mapping only our own ids), then mount and/or network namespaces."""
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWUSER | (_CLONE_NEWNS if config.private_workdir else 0) | (_CLONE_NEWNET if config.unshare_net else 0)
    _ctypes_call(libc, "unshare", flags)
    # a process that changed uid is not dumpable, and then may not write its own maps
    _ctypes_call(libc, "prctl", _PR_SET_DUMPABLE, 1, 0, 0, 0)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _ctypes_call(libc, "prctl", _PR_SET_DUMPABLE, 0, 0, 0, 0)
    if config.private_workdir:
        options = f"size={config.workdir_mb}m,mode=0700,uid={uid},gid={gid}".encode()
        _ctypes_call(libc, "mount", b"tmpfs", workdir.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options)


def _drop_capabilities(libc: Any) -> None:
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    _ctypes_call(libc, "capset", ctypes.byref(Header(_CAPABILITY_VERSION_3, 0)), (Data * 2)())


def apply(config: Confinement, uid: int | None) -> tuple[str | None, dict[str, str]]:
    """Apply `config` to this process; returns the working directory and each layer's state.

    A layer that fails is reported as `off: reason` and the next ones are still tried.
    """
    if not config.requested() and config.workdir is None:
        return None, {}
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    layers: dict[str, str] = {}
    workdir = config.workdir
    if workdir is not None and not config.private_workdir:
        workdir = os.path.join(workdir, str(os.getpid()))
        os.mkdir(workdir, 0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
    if config.drops_uid:
        if uid is None or os.geteuid() != 0:
            layers[LAYER_UID] = "off: the server was not started as root"
        else:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                resource.setrlimit(resource.RLIMIT_NPROC, (config.processes, config.processes))
                layers[LAYER_UID] = "on"
            except OSError as exc:
                layers[LAYER_UID] = f"off: {exc}"
    if config.private_workdir or config.unshare_net:
        try:
            _new_namespaces(libc, config, workdir or "/")
            state = "on"
        except OSError as exc:
            state = f"off: {exc}"
        for name in (LAYER_WORKDIR, LAYER_NETWORK):
            if name in config.requested():
                layers[name] = state
    _drop_capabilities(libc)
    _ctypes_call(libc, "prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _ctypes_call(libc, "prctl", _PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if workdir is not None:
        os.chdir(workdir)
        os.environ.update(HOME=workdir, TMPDIR=workdir)
    return workdir, layers


def remove_child_workdir(config: Confinement, pid: int) -> None:
    """Delete the working directory of a child that had no private one (the fallback)."""
    if config.workdir is not None and not config.private_workdir:
        shutil.rmtree(os.path.join(config.workdir, str(pid)), ignore_errors=True)


def forget_ctypes() -> None:
    """Drop ctypes from `sys.modules`: importing it again is then an audited import."""
    for name in [name for name in sys.modules if name == "ctypes" or name.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]


def enter(config: Confinement, uid: int | None) -> str | None:
    """Apply `config` in a child, all of it or exit: the probe found every layer in it working."""
    try:
        workdir, layers = apply(config, uid)
    except OSError:
        os._exit(70)
    if any(state != "on" for state in layers.values()):
        os._exit(71)
    forget_ctypes()
    return workdir


def probe(config: Confinement) -> dict[str, str]:
    """Which requested layers work here: tried in a throwaway child, reported back on a pipe."""
    if not config.requested():
        return {}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            _, layers = apply(config, config.uid_base)
            os.write(write_end, json.dumps(layers).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
        remove_child_workdir(config, pid)
    if not data:
        return {name: "off: the probe child failed" for name in config.requested()}
    return json.loads(data)
