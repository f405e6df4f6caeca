"""A warm pool of disposable sandbox containers, refilled in the background; the reaper.

Every container is created locked down (`ContainerSpec.create_kwargs`), attached, started
and left waiting for its one execution; taken, it is never given back: it is removed. All
docker SDK calls run on a bounded thread pool, never on the event loop. Containers carry
the label `org.codetool.sandbox.owner` (host name, pid and start time of the process that
made them): at start the reaper removes those whose owner process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
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
from sandbox.docker_stream import raw_socket
from sandbox.owner import owner_gone, owner_token

SANDBOX_LABEL = "org.codetool.sandbox"
OWNER_LABEL = "org.codetool.sandbox.owner"
SANDBOX_USER = "65534:65534"
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

    def create_kwargs(self, owner: str) -> dict[str, Any]:
        memory = f"{self.limits.memory_mb + self.memory_margin_mb}m"
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
        return kwargs


@dataclass(eq=False)
class WarmContainer:
    """A started container whose runner waits on the attach socket."""

    container: Container
    sock: socket.socket
    attachment: Any = field(repr=False)
    """What the SDK returned (keeps the socket's wrapper alive)."""


class ContainerPool:
    """Keeps `size` containers started and waiting; `take` hands one out, `discard` removes it."""

    def __init__(self, client: docker.DockerClient, spec: ContainerSpec, size: int, threads: int) -> None:
        self.client = client
        self.spec = spec
        self.size = size
        self.owner = owner_token()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="codetool-docker")
        self._warm: asyncio.Queue[WarmContainer] = asyncio.Queue()
        self._starting = 0
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

    async def reap_leftovers(self) -> int:
        """Remove the sandbox containers of processes that no longer exist; how many were removed."""
        try:
            found = await self.call(self.client.api.containers, all=True, filters={"label": SANDBOX_LABEL})
        except DockerException as exc:
            raise SandboxError(f"cannot list containers: {docker_error(exc)}") from None
        stale = [c["Id"] for c in found if owner_gone((c.get("Labels") or {}).get(OWNER_LABEL, ""))]
        await asyncio.gather(*(self._remove(c) for c in stale))
        if stale:
            log.info("removed sandbox containers left by ended processes", count=len(stale))
        return len(stale)

    def fill(self) -> None:
        """Start containers in the background until `size` are warm or starting."""
        while not self._closed and self._warm.qsize() + self._starting < self.size:
            self._starting += 1
            self._spawn(self._start_one())

    async def wait_full(self, timeout_s: float) -> None:
        """Wait until `size` containers are warm (`SandboxError` if that takes too long)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._warm.qsize() < self.size:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise SandboxError(f"no warm sandbox container after {timeout_s:g} s: {self.last_error or 'still starting'}") from None

    async def take(self, timeout_s: float) -> WarmContainer:
        """A warm container, all its own (`SandboxError` if none comes within `timeout_s`)."""
        try:
            async with asyncio.timeout(timeout_s):
                warm = await self._warm.get()
        except TimeoutError:
            raise SandboxError(f"no sandbox container ready within {timeout_s:g} s: {self.last_error or 'still starting'}") from None
        self.fill()
        return warm

    def discard(self, warm: WarmContainer) -> None:
        """Close the connection and remove the container, in the background."""
        with contextlib.suppress(OSError):
            warm.sock.close()
        self._spawn(self._remove(warm.container.id))

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

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_one(self) -> None:
        try:
            warm = await self.call(self._create_started)
        except (DockerException, OSError, TypeError) as exc:
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
        container = self.client.containers.create(**self.spec.create_kwargs(self.owner))
        try:
            attachment = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            sock = raw_socket(attachment)
            container.start()
        except BaseException:
            with contextlib.suppress(DockerException):
                container.remove(force=True)
            raise
        return WarmContainer(container, sock, attachment)

    async def _remove(self, container_id: str) -> None:
        try:
            await self.call(self.client.api.remove_container, container_id, force=True)
        except NotFound:
            pass
        except DockerException as exc:
            log.warning("cannot remove a sandbox container", container=container_id[:12], error=docker_error(exc))
