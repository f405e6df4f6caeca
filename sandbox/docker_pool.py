"""A warm pool of disposable sandbox containers, refilled in the background; the reaper.

Every container is created locked down (`ContainerSpec.create_kwargs`), attached, started
and left waiting for its one execution, or its one query when it runs the runner's fork
server (`ContainerSpec.fork_server`: its socket lies in a host directory of its own,
bind-mounted at `FORK_SERVER_DIR`); taken, it is never given back: it is removed. All
docker SDK calls run on bounded thread pools, never on the event loop: starts on several
threads, removals on one thread of their own, so that removing the containers of finished
queries never holds up the start of those the next queries wait for. A discarded container
does not wait for its removal to stop: shutting its attach socket down ends the runner's
input, on which a fork server exits at once, and the container with it (the forced removal
that follows kills whatever still runs). Containers carry
the label `org.codetool.sandbox.owner` (host name, pid and start time of the process that
made them): at start the reaper removes those whose owner process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker
from docker.errors import DockerException, NotFound
from docker.models.containers import Container
from docker.types import LogConfig, Ulimit
from structlog import get_logger

from codetool_kernel.errors import SandboxError
from codetool_kernel.protocol import SandboxLimits
from sandbox.docker_engine import docker_error
from sandbox.docker_stream import DemuxedReader, raw_socket
from sandbox.forkserver import ServerDirs
from sandbox.owner import owner_gone, owner_token

SANDBOX_LABEL = "org.codetool.sandbox"
OWNER_LABEL = "org.codetool.sandbox.owner"
SANDBOX_UID = 65534
SANDBOX_USER = f"{SANDBOX_UID}:{SANDBOX_UID}"
FORK_SERVER_DIR = "/run/codetool"
"""Where a fork-server container finds the host directory that holds its socket."""
_RETRY_DELAY_S = (0.5, 1.0, 2.0, 5.0)
_OPEN_FILES = 256

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ContainerSpec:
    """How sandbox containers are made: the image and the bounds around the runner."""

    image: str
    limits: SandboxLimits
    cpus: float = 1.0
    pids: int = 64
    tmp_mb: int = 64
    memory_margin_mb: int = 64
    """Above the runner's own address-space limit, so the runner reports MemoryError first."""
    command: list[str] | None = None
    fork_server: bool = False
    """The command is a fork server listening in `FORK_SERVER_DIR` (one container per query)."""
    executions: int = 1
    """Executions running in one container at once (each may use `limits.memory_mb`)."""

    def create_kwargs(self, owner: str, socket_dir: str | None = None) -> dict[str, Any]:
        memory = f"{self.limits.memory_mb * self.executions + self.memory_margin_mb}m"
        kwargs: dict[str, Any] = dict(
            image=self.image,
            stdin_open=True,  # with the SDK's defaults also StdinOnce: a host that goes away ends the runner
            user=SANDBOX_USER,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"size={self.tmp_mb}m,mode=1777,nosuid,nodev,noexec"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=self.pids,
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(self.cpus * 1e9),
            ulimits=[Ulimit(name="nofile", soft=_OPEN_FILES, hard=_OPEN_FILES)],
            init=True,  # the runner is not pid 1, and zombies are reaped
            log_config=LogConfig(type=LogConfig.types.NONE),  # output cannot fill the host's disk
            hostname="sandbox",
            labels={SANDBOX_LABEL: "1", OWNER_LABEL: owner},
        )
        if self.command is not None:
            kwargs["command"] = self.command
        if socket_dir is not None:
            kwargs["volumes"] = {socket_dir: {"bind": FORK_SERVER_DIR, "mode": "rw"}}
        return kwargs


@dataclass(eq=False)
class WarmContainer:
    """A started container whose runner (or fork server) waits on the attach socket."""

    container: Container
    sock: socket.socket
    attachment: Any = field(repr=False)
    """What the SDK returned (keeps the socket's wrapper alive)."""
    dirs: ServerDirs | None = None
    """A fork server's host directories (its socket is in `dirs.work`)."""
    output: DemuxedReader | None = None
    """A fork server's stdout (its `ready`), once read by the pool's `warm_up`."""
    control: asyncio.StreamWriter | None = None
    """A fork server's stdin: the pids of the children to kill; closing it ends the server."""
    drain: asyncio.Task[None] | None = field(default=None, repr=False)
    """Keeps reading what a fork server writes after its `ready` (only stderr's tail is kept)."""


class ContainerPool:
    """Keeps `size` containers started and waiting; `take` hands one out, `discard` removes it.

    With `expected` (how many containers will be taken in all, when known) the pool starts
    none ahead beyond those: once `expected` were taken, a `take` starts its own.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        spec: ContainerSpec,
        size: int,
        threads: int,
        warm_up: Callable[[WarmContainer], Awaitable[None]] | None = None,
        expected: int | None = None,
    ) -> None:
        self.client = client
        self.spec = spec
        self.size = size
        self.expected = expected
        self.warm_up = warm_up
        """Run on each started container before it counts as warm (an exception discards it)."""
        self.started = 0
        """Containers started so far."""
        self.taken = 0
        """Containers handed out so far."""
        self.owner = owner_token()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="codetool-docker")
        self._remover = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codetool-docker-rm")
        self._warm: asyncio.Queue[WarmContainer] = asyncio.Queue()
        self._starting = 0
        self._waiting = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failures = 0
        self.last_error: str | None = None
        self._closed = False

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call on the pool's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: function(*args, **kwargs))

    @property
    def warm(self) -> int:
        return self._warm.qsize()

    @property
    def target(self) -> int:
        """Containers to have warm or starting now: `size`, fewer near `expected`, never fewer than takers waiting."""
        ahead = self.size if self.expected is None else min(self.size, max(0, self.expected - self.taken))
        return max(ahead, self._waiting)

    async def reap_leftovers(self) -> int:
        """Remove the sandbox containers of processes that no longer exist; how many were removed."""
        try:
            found = await self.call(self.client.api.containers, all=True, filters={"label": SANDBOX_LABEL})
        except DockerException as exc:
            raise SandboxError(f"cannot list containers: {docker_error(exc)}") from None
        stale = [c["Id"] for c in found if owner_gone((c.get("Labels") or {}).get(OWNER_LABEL, ""))]
        await asyncio.gather(*(self.call(self._remove_now, c, None) for c in stale))  # on the start threads: none is starting yet
        if stale:
            log.info("removed sandbox containers left by ended processes", count=len(stale))
        return len(stale)

    def fill(self) -> None:
        """Start containers in the background until `target` are warm or starting."""
        while not self._closed and self._warm.qsize() + self._starting < self.target:
            self._starting += 1
            self._spawn(self._start_one())

    async def wait_warm(self, count: int, timeout_s: float) -> None:
        """Wait until `count` containers are warm (`SandboxError` if that takes too long)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._warm.qsize() < count:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise SandboxError(f"no warm sandbox container after {timeout_s:g} s: {self.last_error or 'still starting'}") from None

    async def take(self, timeout_s: float) -> WarmContainer:
        """A warm container, all its own (`SandboxError` if none comes within `timeout_s`)."""
        self._waiting += 1
        try:
            self.fill()
            async with asyncio.timeout(timeout_s):
                warm = await self._warm.get()
        except TimeoutError:
            raise SandboxError(f"no sandbox container ready within {timeout_s:g} s: {self.last_error or 'still starting'}") from None
        finally:
            self._waiting -= 1
        self.taken += 1
        self.fill()
        return warm

    def discard(self, warm: WarmContainer) -> None:
        """End the connection (the runner's input with it) and remove the container and its directories, in the background."""
        with contextlib.suppress(OSError):
            warm.sock.shutdown(socket.SHUT_RDWR)  # a close alone leaves it open while the SDK's wrapper holds it
        if warm.drain is not None:
            warm.drain.cancel()
        if warm.control is not None:
            warm.control.close()
        with contextlib.suppress(OSError):
            warm.sock.close()
        self._spawn(self._remove(warm.container.id, warm.dirs))

    async def aclose(self) -> None:
        """Stop refilling, remove every container this pool made, release the threads."""
        self._closed = True
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        while not self._warm.empty():
            self.discard(self._warm.get_nowait())
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        with contextlib.suppress(DockerException):  # anything a cancelled start left behind
            mine = await self.call(self.client.api.containers, all=True, filters={"label": f"{OWNER_LABEL}={self.owner}"})
            await asyncio.gather(*(self._remove(c["Id"]) for c in mine))
        self._executor.shutdown(wait=True)
        self._remover.shutdown(wait=True)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_one(self) -> None:
        try:
            warm = await self.call(self._create_started)
            self.started += 1
            if self.warm_up is not None:
                try:
                    await self.warm_up(warm)
                except BaseException:
                    self.discard(warm)
                    raise
        except (DockerException, OSError, TypeError, SandboxError) as exc:
            self.last_error = docker_error(exc)
            delay = _RETRY_DELAY_S[min(self._failures, len(_RETRY_DELAY_S) - 1)]
            self._failures += 1
            log.warning("cannot start a sandbox container; retrying", error=self.last_error, retry_in_s=delay)
            await asyncio.sleep(delay)
            self._starting -= 1
            self.fill()
            return
        self._starting -= 1
        self._failures = 0
        if self._closed:
            self.discard(warm)
        else:
            self._warm.put_nowait(warm)

    def _create_started(self) -> WarmContainer:
        """Create, attach (before start, so nothing the runner says is missed), start. Blocking."""
        dirs = self._socket_dirs() if self.spec.fork_server else None
        try:
            container = self.client.containers.create(**self.spec.create_kwargs(self.owner, dirs.work if dirs else None))
        except BaseException:
            if dirs is not None:
                shutil.rmtree(dirs.root, ignore_errors=True)
            raise
        try:
            attachment = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            sock = raw_socket(attachment)
            container.start()
        except BaseException:
            with contextlib.suppress(DockerException):
                container.remove(force=True)
            if dirs is not None:
                shutil.rmtree(dirs.root, ignore_errors=True)
            raise
        return WarmContainer(container, sock, attachment, dirs)

    @staticmethod
    def _socket_dirs() -> ServerDirs:
        """A host directory for a fork server's socket, writable by the container's user only."""
        dirs = ServerDirs.create()
        os.chmod(dirs.work, 0o700)
        os.chown(dirs.work, SANDBOX_UID, SANDBOX_UID)
        return dirs

    async def _remove(self, container_id: str, dirs: ServerDirs | None = None) -> None:
        await asyncio.get_running_loop().run_in_executor(self._remover, self._remove_now, container_id, dirs)

    def _remove_now(self, container_id: str, dirs: ServerDirs | None) -> None:
        """Force-remove a container and delete its directories. Blocking."""
        try:
            self.client.api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except DockerException as exc:
            log.warning("cannot remove a sandbox container", container=container_id[:12], error=docker_error(exc))
        if dirs is not None:
            shutil.rmtree(dirs.root, ignore_errors=True)
