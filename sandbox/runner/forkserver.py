"""The fork server: a warm runner that keeps pre-forked children ready, one per execution.

The server imports everything, builds the engine, then forks `spares` children and keeps
that many waiting. A waiting child accepts one connection on the server's Unix socket,
tells the server (which forks its replacement), moves into its own process group and
holds one ordinary conversation on that connection as fd 0/1 (`worker.serve_one`), then
exits. Each child starts from the server's state: modules imported and the engine built,
nothing of any earlier execution. The server exits, killing its waiting children, when
the host closes its stdin (the control pipe); waiting children stay in the server's
process group, so killing that group also clears them.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import struct

from .channel import PROTOCOL_VERSION, READY, write_frame
from .engines import Engine
from .worker import serve_one

_BACKLOG = 64
_REAP_EVERY_S = 1.0
_PID = struct.Struct("=i")
_WARM_UP = "import json, re, datetime\nprint(json.dumps({'when': str(datetime.datetime.strptime('2024', '%Y'))}))\n"


class _Server:
    def __init__(self, socket_path: str, engine: Engine, spares: int, control_in: int) -> None:
        self.engine = engine
        self.spares = spares
        self.control_in = control_in
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(socket_path)
        os.chmod(socket_path, 0o600)
        self.listener.listen(_BACKLOG)
        self.taken_r, self.taken_w = os.pipe()
        self.waiting: set[int] = set()

    def fork_spare(self) -> None:
        pid = os.fork()
        if pid == 0:
            self._spare()
        self.waiting.add(pid)

    def _spare(self) -> None:
        """Body of a waiting child: never returns."""
        status = 1
        try:
            os.close(self.taken_r)
            # a blocking accept: the kernel wakes one waiting child per connection
            connection, _ = self.listener.accept()
            os.write(self.taken_w, _PID.pack(os.getpid()))
            os.setpgid(0, 0)  # its own group, which the host kills on overrun
            self._become_worker(connection)
            status = 0
        finally:
            os._exit(status)

    def _become_worker(self, connection: socket.socket) -> None:
        os.close(self.taken_w)
        self.listener.close()
        fd = connection.detach()
        os.dup2(fd, 0)  # replaces the control pipe
        os.dup2(fd, 1)
        os.close(fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        serve_one(0, 1, self.engine)

    def run(self, control_out: int) -> None:
        for _ in range(self.spares):
            self.fork_spare()
        write_frame(control_out, {"type": READY, "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "mode": self.engine.mode})
        while True:
            readable, _, _ = select.select([self.control_in, self.taken_r], [], [], _REAP_EVERY_S)
            if self.control_in in readable and not os.read(self.control_in, 4096):
                return
            if self.taken_r in readable:
                data = os.read(self.taken_r, _PID.size * 64)
                for (pid,) in _PID.iter_unpack(data[: len(data) - len(data) % _PID.size]):
                    self.waiting.discard(pid)
            self._reap()
            while len(self.waiting) < self.spares:
                self.fork_spare()

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


def _warm_up(engine: Engine) -> None:
    """Load what the first execution would otherwise import lazily, in the server, once."""
    exec(compile(_WARM_UP, "<warm-up>", "exec"), {"print": lambda *args: None})
    engine.compile(_WARM_UP, "<warm-up>")


def serve_forever(socket_path: str, engine: Engine, spares: int, control_in: int = 0, control_out: int = 1) -> None:
    """Serve executions on `socket_path` until `control_in` reaches end of file."""
    _warm_up(engine)
    server = _Server(socket_path, engine, max(1, spares), control_in)
    gc.collect()
    gc.freeze()  # keep the pages shared with the children shared
    try:
        server.run(control_out)
    finally:
        server.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        for pid in server.waiting:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
