"""The fork server: a warm runner that keeps pre-forked children ready, one per execution.

The server imports everything, builds the engine, then forks `spares` children and keeps
that many waiting. A waiting child applies its confinement (`confine`), accepts one
connection on the server's Unix socket, tells the server (which forks its replacement),
moves into its own process group and supervises one execution on that connection as fd
0/1 (`worker.supervise`; the code runs in a child it forked while waiting), then exits. Each child starts from the server's state:
modules imported and the engine built, nothing of any earlier execution. The server
exits, killing its waiting children, when the host closes its stdin (the control pipe);
waiting children stay in the server's process group, so killing that group also clears
them. The host may also write 4-byte pids on that pipe: the server then kills those
children (a host asks when the server runs in a pid namespace of its own, where the
pids it was told mean nothing to the host).

With per-child uids (a server started as root), a child's uid is given back only once
every process left with that uid has been killed, so nothing a child started outlives
it into the next execution; the fallback per-child working directory is deleted then too.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import select
import signal
import socket
import struct

from . import audit_hook, confine
from .channel import PROTOCOL_VERSION, READY, write_frame
from .engines import Engine
from .worker import PreparedCell, prepare_cell, supervise

_BACKLOG = 64
_REAP_EVERY_S = 1.0
_STARVED_WAIT_S = 0.02
"""How soon to look again when no uid is free for a new spare."""
_KILL_ROUNDS = 100
_PID = struct.Struct("=i")
_DEAD_STATES = (b"Z", b"X")
_WARM_UP = "import json, re, datetime, encodings.idna, subprocess\nprint(json.dumps({'when': str(datetime.datetime.strptime('2024', '%Y'))}))\n"


def listen_on_path(socket_path: str) -> socket.socket:
    """A listening Unix socket at `socket_path`, reachable by its owner only."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    os.chmod(socket_path, 0o600)
    listener.listen(_BACKLOG)
    return listener


def _uid_has_processes(uid: int) -> bool:
    """Whether a live process visible here runs as `uid` (cheap in a pid namespace of our own).

    Zombies do not count: they run nothing, and their parent reaps them.
    """
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status", "rb") as handle:
                    status = handle.read()
            except OSError:
                return True  # it vanished while we looked: it may have forked on its way out
            if int(status.split(b"\nUid:", 1)[1].split()[0]) == uid and status.split(b"\nState:", 1)[1].split()[0] not in _DEAD_STATES:
                return True
    return False


def kill_uid(uid: int, *, look_first: bool = False) -> None:
    """SIGKILL every process running as `uid`, from a helper that takes that uid (root only).

    `look_first`: skip the helper when /proc shows no such process (worth it only where
    /proc lists few processes, i.e. in a pid namespace of the server's own).
    """
    if look_first and not _uid_has_processes(uid):
        return
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            for _ in range(_KILL_ROUNDS):  # again, until nothing was left to signal (a fork bomb races us)
                os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            status = 0
        finally:
            os._exit(status)
    os.waitpid(pid, 0)


class _Server:
    def __init__(self, listener: socket.socket, engine: Engine, spares: int, control_in: int, confinement: confine.Confinement) -> None:
        self.engine = engine
        self.spares = spares
        self.control_in = control_in
        self.listener = listener
        self.confinement = confinement
        self.pid = os.getpid()
        self.taken_r, self.taken_w = os.pipe()
        self.exited_r, exited_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(exited_w, warn_on_full_buffer=False)
        self.read_roots = audit_hook.python_roots()
        self.waiting: set[int] = set()
        self.children: set[int] = set()
        self.uid_of: dict[int, int] = {}
        self.control_buffer = b""
        base = confinement.uid_base or 0
        self.free_uids = list(range(base, base + confinement.uid_count)) if confinement.drops_uid else []

    def fork_spare(self) -> bool:
        """Fork one waiting child; False when every uid is in use or the fork failed (try again soon)."""
        uid = None
        if self.confinement.drops_uid:
            if not self.free_uids:
                return False
            uid = self.free_uids.pop(0)
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory for now (a fork bomb beside us, say): try again soon
            if uid is not None:
                self.free_uids.insert(0, uid)
            return False
        if pid == 0:
            self._spare(uid)
        self.waiting.add(pid)
        self.children.add(pid)
        if uid is not None:
            self.uid_of[pid] = uid
        return True

    def _spare(self, uid: int | None) -> None:
        """Body of a waiting child: never returns."""
        status = 1
        try:
            os.close(signal.set_wakeup_fd(-1))
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self.exited_r)
            os.close(self.taken_r)
            workdir = confine.enter(self.confinement, uid)
            if os.getppid() != self.pid:  # the server died before the parent-death signal was set
                return
            lock_down = None
            if self.confinement.audit_hook:
                lock_down = functools.partial(audit_hook.install, workdir or os.getcwd(), self.read_roots)
            cell = prepare_cell(self.engine, lock_down)  # the code's own process, forked ahead
            # a blocking accept: the kernel wakes one waiting child per connection
            connection, _ = self.listener.accept()
            os.write(self.taken_w, _PID.pack(os.getpid()))
            os.setpgid(0, 0)  # its own group, which the host kills on overrun
            self._become_worker(connection, cell)
            status = 0
        finally:
            os._exit(status)

    def _become_worker(self, connection: socket.socket, cell: PreparedCell) -> None:
        os.close(self.taken_w)
        self.listener.close()
        fd = connection.detach()
        os.dup2(fd, 0)  # replaces the control pipe
        os.dup2(fd, 1)
        os.close(fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        supervise(cell, 0, 1, self.engine.mode)

    def run(self, control_out: int, layers: dict[str, str]) -> None:
        for _ in range(self.spares):
            self.fork_spare()
        ready = {"type": READY, "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "mode": self.engine.mode, "layers": layers}
        write_frame(control_out, ready)
        starved = False
        while True:
            wait_s = _STARVED_WAIT_S if starved else _REAP_EVERY_S
            readable, _, _ = select.select([self.control_in, self.taken_r, self.exited_r], [], [], wait_s)
            if self.exited_r in readable:
                os.read(self.exited_r, 4096)  # SIGCHLD: reaped below
            if self.control_in in readable and not self._read_control():
                return
            if self.taken_r in readable:
                data = os.read(self.taken_r, _PID.size * 64)
                for (pid,) in _PID.iter_unpack(data[: len(data) - len(data) % _PID.size]):
                    self.waiting.discard(pid)
            self._reap()
            starved = False
            while len(self.waiting) < self.spares and not starved:
                starved = not self.fork_spare()

    def _read_control(self) -> bool:
        """Kill the children the host names (4-byte pids); False at end of file (time to exit)."""
        data = os.read(self.control_in, 4096)
        if not data:
            return False
        self.control_buffer += data
        whole = len(self.control_buffer) - len(self.control_buffer) % _PID.size
        for (pid,) in _PID.iter_unpack(self.control_buffer[:whole]):
            self.kill_child(pid)
        self.control_buffer = self.control_buffer[whole:]
        return True

    def kill_child(self, pid: int) -> None:
        """SIGKILL one of our children and its process group.

        Whatever else it started (own uid) is killed when it is reaped (`_clean_up_after`),
        before its uid is given out again; its exit wakes the server at once (SIGCHLD).
        """
        if pid not in self.children:
            return
        for kill in (os.killpg, os.kill):  # the group exists once the child took its connection
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)

    def _reap(self) -> None:
        """Collect exited children; a waiting child that died is forgotten (and replaced)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.waiting.discard(pid)
            self.children.discard(pid)
            self._clean_up_after(pid)

    def _clean_up_after(self, pid: int) -> None:
        uid = self.uid_of.pop(pid, None)
        if uid is not None:
            kill_uid(uid, look_first=self.confinement.own_pid_namespace)
            self.free_uids.append(uid)
        confine.remove_child_workdir(self.confinement, pid)


def _warm_up(engine: Engine) -> None:
    """Load what the first execution would otherwise import lazily, in the server, once."""
    exec(compile(_WARM_UP, "<warm-up>", "exec"), {"print": lambda *args: None})
    engine.compile(_WARM_UP, "<warm-up>")


def serve_forever(
    listener: socket.socket,
    engine: Engine,
    spares: int,
    confinement: confine.Confinement | None = None,
    control_in: int = 0,
    control_out: int = 1,
) -> None:
    """Serve executions on `listener` until `control_in` reaches end of file."""
    confinement = confinement or confine.Confinement()
    _warm_up(engine)
    layers = confine.probe(confinement)
    server = _Server(listener, engine, max(1, spares), control_in, confinement.keeping(layers))
    gc.collect()
    gc.freeze()  # keep the pages shared with the children shared
    try:
        server.run(control_out, layers)
    finally:
        listener.close()
        for pid in server.waiting:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
