"""Host side of the runner's fork server: start it, get one fresh child per execution, clean up.

The server (`python -m runner --fork-server SOCKET`) runs with a scrubbed environment in a
private temporary directory (which links to the runner package and holds the socket). Connecting to its socket forks a child that says `ready`
with its pid; that pid is also the child's process group, which is what gets killed when
an execution overruns or is cancelled. A server that died is started again on the next
connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from codetool.errors import SandboxError
from sandbox.channel import ChannelError, read_message, ready_pid

RUNNER_PACKAGE = Path(__file__).resolve().parent / "runner"
_STDERR_LINES = 20


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


@dataclass(eq=False)
class Child:
    """One forked runner: the two ends of its channel, and its pid (= process group) once it said `ready`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int | None = None
    finished: bool = field(default=False)
    """Set once it delivered its result; an unfinished child is killed on release."""

    def on_ready(self, pid: int) -> None:
        self.pid = pid


class ForkServer:
    """Owns one fork-server process in `mode` and hands out fresh children."""

    def __init__(self, mode: str, *, spares: int = 2, start_timeout_s: float = 30.0, connect_timeout_s: float = 10.0) -> None:
        self.mode = mode
        self.spares = spares
        self.start_timeout_s = start_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._process: asyncio.subprocess.Process | None = None
        self._workdir: str | None = None
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
        assert self._workdir is not None
        return os.path.join(self._workdir, "runner.sock")

    async def start(self) -> None:
        """Start the server unless it is running; `SandboxError` if it does not come up."""
        async with self._lock:
            if self.pid is not None:
                return
            if self._process is not None:  # it died: clean up before the next one
                self.restarts += 1
                await self._stop_process()
            if self._workdir is None:
                self._workdir = tempfile.mkdtemp(prefix="codetool-runner-")
                link_runner(self._workdir)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "runner", "--mode", self.mode, "--fork-server", self.socket_path,
                "--spares", str(self.spares),
                cwd=self._workdir,
                env=scrubbed_environment(self._workdir),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )  # fmt: skip
            self._stderr_task = asyncio.create_task(self._keep_stderr(self._process.stderr))
            try:
                assert self._process.stdout is not None
                async with asyncio.timeout(self.start_timeout_s):
                    ready_pid(await read_message(self._process.stdout))
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
        """A connection to a fresh child for one execution; killed on exit unless it finished.

        The child's `ready` is left for the caller to read (`sandbox.exchange` does), so the
        `exec` can be sent without waiting a round trip.
        """
        child = await self._connect()
        self._children.add(child)
        try:
            yield child
        finally:
            self._children.discard(child)
            if not child.finished and child.pid is not None:
                kill_group(child.pid)
            child.writer.close()
            with contextlib.suppress(Exception):
                await child.writer.wait_closed()

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
                kill_group(child.pid)
        async with self._lock:
            await self._stop_process()
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None
