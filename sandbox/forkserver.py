"""Host side of the runner's fork server: start it, get one fresh child per execution, clean up.

The host makes the listening Unix socket in a private temporary directory and hands it
to the server (`python -m runner --listen-fd FD`), which runs with a scrubbed environment,
by default straight from that directory (which links to the runner package); a backend
may start it another way (inside bubblewrap, say) with its own `Launcher`. Connecting to
the socket gets a child that says `ready` with its pid; that pid is also the child's
process group, which is what gets killed when an execution overruns or is cancelled. A
server that died is started again on the next connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codetool_kernel.errors import SandboxError
from sandbox.channel import ChannelError, read_message, ready_pid
from sandbox.owner import owner_gone, owner_token

RUNNER_PACKAGE = Path(__file__).resolve().parent / "runner"
_STDERR_LINES = 20
_BACKLOG = 64
_DIR_PREFIX = "codetool-runner-"
_PID = struct.Struct("=i")


def scrubbed_environment(workdir: str) -> dict[str, str]:
    """The whole environment of a runner: nothing inherited from the host (no API keys)."""
    return {
        "PATH": os.defpath,
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def link_runner(directory: str) -> None:
    """Let `python -m runner` started in `directory` find the runner package.

    The runner is started in a directory of its own holding a link to the package, rather
    than in `sandbox/`, so that no sibling module of ours can shadow a standard module.
    """
    os.symlink(RUNNER_PACKAGE, os.path.join(directory, "runner"), target_is_directory=True)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid`, if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def remove_stale_server_dirs() -> None:
    """Delete the server directories that processes which no longer run left in the temp dir."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        if name.startswith(_DIR_PREFIX):
            token = ":".join(name.removeprefix(_DIR_PREFIX).split("_")[:3])
            if owner_gone(token):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)


@dataclass(frozen=True)
class ServerDirs:
    """The host-side directories of one fork server, all under one private temporary `root`."""

    root: str

    @property
    def home(self) -> str:
        """Holds only the link to the runner package (the server's directory when run directly)."""
        return os.path.join(self.root, "home")

    @property
    def socket(self) -> str:
        return os.path.join(self.root, "runner.sock")

    @property
    def work(self) -> str:
        """Where children work when the server runs directly on the host."""
        return os.path.join(self.root, "work")

    @classmethod
    def create(cls) -> ServerDirs:
        """Make the directories, after removing those of fork servers whose host process is gone."""
        remove_stale_server_dirs()
        owner = owner_token().replace(":", "_")
        dirs = cls(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{owner}_"))
        os.chmod(dirs.root, 0o711)  # children that run as another uid reach `work` through it
        os.mkdir(dirs.home)
        os.mkdir(dirs.work)
        link_runner(dirs.home)
        return dirs


@dataclass(frozen=True)
class Launch:
    """How to start a fork server: the command, and the directory it starts in."""

    argv: list[str]
    cwd: str
    pid_namespace: bool = False
    """The server runs in a pid namespace of its own: its children's pids mean nothing here."""


Launcher = Callable[[ServerDirs, int], Launch]
"""Given the server's directories and the inherited listening socket's fd, how to start it."""


def direct_launcher(mode: str, spares: int, *runner_options: str) -> Launcher:
    """Start `python -m runner` directly, in the directory holding the runner link."""

    def launch(dirs: ServerDirs, listen_fd: int) -> Launch:
        argv = [sys.executable, "-m", "runner", "--mode", mode, "--listen-fd", str(listen_fd), "--spares", str(spares)]
        return Launch([*argv, *runner_options], dirs.home)

    return launch


@dataclass(eq=False)
class Child:
    """One forked runner: the two ends of its channel, and its pid (= process group) once it said `ready`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int | None = None

    def on_ready(self, pid: int) -> None:
        self.pid = pid


class ForkServer:
    """Owns one fork-server process in `mode` and hands out fresh children."""

    def __init__(
        self,
        mode: str,
        *,
        spares: int = 2,
        start_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        launcher: Launcher | None = None,
    ) -> None:
        self.mode = mode
        self.spares = spares
        self.start_timeout_s = start_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.launcher = launcher or direct_launcher(mode, spares)
        self._launch = Launch([], "")
        self.ready_message: dict[str, Any] = {}
        """The server's `ready` message (a confining server says there which layers work)."""
        self._process: asyncio.subprocess.Process | None = None
        self._dirs: ServerDirs | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._stderr_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._children: set[Child] = set()
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._process.pid if self._process and self._process.returncode is None else None

    @property
    def socket_path(self) -> str:
        assert self._dirs is not None
        return self._dirs.socket

    async def start(self) -> None:
        """Start the server unless it is running; `SandboxError` if it does not come up."""
        async with self._lock:
            if self.pid is not None:
                return
            if self._process is not None:  # it died: clean up before the next one
                self.restarts += 1
                await self._stop_process()
            if self._dirs is None:
                self._dirs = ServerDirs.create()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._dirs.socket)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(self._dirs.socket)
                os.chmod(self._dirs.socket, 0o600)
                listener.listen(_BACKLOG)
                launch = self._launch = self.launcher(self._dirs, listener.fileno())
                try:
                    self._process = await asyncio.create_subprocess_exec(
                        *launch.argv,
                        cwd=launch.cwd,
                        env=scrubbed_environment(self._dirs.home),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE,
                        start_new_session=True,
                        pass_fds=(listener.fileno(),),
                    )
                except OSError as exc:
                    raise SandboxError(f"the {self.mode} runner could not be started ({launch.argv[0]}): {exc}") from None
            self._stderr_task = asyncio.create_task(self._keep_stderr(self._process.stderr))
            try:
                assert self._process.stdout is not None
                async with asyncio.timeout(self.start_timeout_s):
                    message = await read_message(self._process.stdout)
                    ready_pid(message)
                    self.ready_message = message
            except (TimeoutError, ChannelError) as exc:
                await self._stop_process()
                raise SandboxError(f"the {self.mode} runner did not start: {exc or 'timed out'}; stderr: {self.stderr_tail() or '-'}") from None

    async def _keep_stderr(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while line := await stream.readline():
            self._stderr_tail.append(line.decode("utf-8", errors="replace").rstrip())

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr, for error messages."""
        return " | ".join(self._stderr_tail)

    @contextlib.asynccontextmanager
    async def child(self) -> AsyncIterator[Child]:
        """A connection to a fresh child for one execution; its process group is killed on exit.

        The child's `ready` is left for the caller to read (`sandbox.exchange` does), so the
        `exec` can be sent without waiting a round trip.
        """
        child = await self._connect()
        self._children.add(child)
        try:
            yield child
        finally:
            self._children.discard(child)
            if child.pid is not None:  # finished or not: nothing of the execution outlives it
                self._kill_child(child.pid)
            child.writer.close()
            with contextlib.suppress(Exception):
                await child.writer.wait_closed()

    def _kill_child(self, pid: int) -> None:
        if not self._launch.pid_namespace:
            kill_group(pid)
            return
        process = self._process
        if process is not None and process.stdin is not None and not process.stdin.is_closing():
            process.stdin.write(_PID.pack(pid))  # the server kills it (a dead server took its namespace with it)

    async def _connect(self) -> Child:
        for attempt in (1, 2):
            await self.start()
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    reader, writer = await asyncio.open_unix_connection(self.socket_path)
                return Child(reader, writer)
            except (OSError, TimeoutError) as exc:
                if attempt == 2:
                    raise SandboxError(f"cannot get a {self.mode} runner: {exc or 'timed out'}; stderr: {self.stderr_tail() or '-'}") from None
                async with self._lock:
                    self.restarts += 1
                    await self._stop_process()  # the next start() begins a new server
        raise AssertionError("unreachable")

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await process.wait()  # on a clean exit it kills its waiting children itself
        if process.returncode is None or process.returncode < 0:
            # stuck or killed: its group (which also holds its waiting children) still exists,
            # so the group id cannot have been reused
            kill_group(process.pid)
            await process.wait()
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr_task

    async def aclose(self) -> None:
        """Kill every child still running, stop the server, remove its directory."""
        for child in list(self._children):
            if child.pid is not None:
                self._kill_child(child.pid)
        async with self._lock:
            await self._stop_process()
            if self._dirs is not None:
                shutil.rmtree(self._dirs.root, ignore_errors=True)
                self._dirs = None
