"""The `docker` backend: each execution in its own disposable, locked-down container.

A warm pool (`sandbox.docker_pool`) keeps `pool_size` containers started, each with the
runner (`python -m runner --mode plain`) waiting on its stdin; an execution takes one,
holds the usual conversation over the attach socket (`sandbox.docker_stream`), so tool
calls still go through the host's gateway, and the container is removed afterwards,
whatever happened. Containers have no network, a read-only root, a small tmpfs `/tmp`
(the code's working directory), no capabilities, no-new-privileges, a non-root user,
pids/memory/CPU limits and no log driver. The image is `python -m sandbox build-image`'s.
The runner installs the process backend's audit hook too (`audit_hook=False` turns it
off), so the same code gets the same verdict on `process` and `docker`.
"""

from __future__ import annotations

import asyncio

import docker
from docker.errors import DockerException, ImageNotFound

from codetool_kernel.errors import ConfigError, SandboxError
from codetool_kernel.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler
from sandbox.base import Sandbox, register_backend
from sandbox.docker_engine import connect, docker_error
from sandbox.docker_pool import ContainerPool, ContainerSpec
from sandbox.docker_stream import attached_streams
from sandbox.exchange import run_exchange
from sandbox.image import IMAGE_COMMAND, default_image_tag


@register_backend("docker")
class DockerSandbox(Sandbox):
    """Runs plain Python cells in disposable containers from a warm pool."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        pool_size: int = 4,
        concurrency: int | None = None,
        image: str | None = None,
        start_timeout_s: float = 120.0,
        cpus: float = 1.0,
        pids: int = 64,
        tmp_mb: int = 64,
        threads: int | None = None,
        audit_hook: bool = True,
    ) -> None:
        super().__init__(limits)
        if pool_size < 1 or (concurrency is not None and concurrency < 1):
            raise ConfigError(f"docker sandbox: pool_size and concurrency must be >= 1, got {pool_size} and {concurrency}")
        self.pool_size = pool_size
        self.concurrency = concurrency or pool_size
        self.start_timeout_s = start_timeout_s
        command = [*IMAGE_COMMAND, "--audit-hook"] if audit_hook else None
        self.spec = ContainerSpec(image or default_image_tag(), self.limits, cpus=cpus, pids=pids, tmp_mb=tmp_mb, command=command)
        self._threads = threads or max(2, min(8, pool_size))
        self._slots = asyncio.Semaphore(self.concurrency)
        self._client: docker.DockerClient | None = None
        self._pool: ContainerPool | None = None

    @property
    def pool(self) -> ContainerPool:
        if self._pool is None:
            raise SandboxError("the docker sandbox is not started (use `async with` or `await start()`)")
        return self._pool

    async def start(self) -> None:
        """Connect, check the image, reap leftovers of crashed runs, fill the warm pool."""
        if self._pool is not None:
            return
        client = await asyncio.to_thread(connect)
        try:
            await asyncio.to_thread(client.images.get, self.spec.image)
        except ImageNotFound:
            client.close()
            raise SandboxError(f"sandbox image {self.spec.image} not found: build it with `python -m sandbox build-image`") from None
        except DockerException as exc:
            client.close()
            raise SandboxError(f"cannot inspect the sandbox image {self.spec.image}: {docker_error(exc)}") from None
        self._client = client
        self._pool = ContainerPool(client, self.spec, self.pool_size, self._threads)
        try:
            await self._pool.reap_leftovers()
            self._pool.fill()
            await self._pool.wait_full(self.start_timeout_s)
        except BaseException:
            await self.aclose()
            raise

    async def wait_warm(self) -> None:
        """Wait until the pool is full again (benchmarks measure a warm pool this way)."""
        await self.pool.wait_full(self.start_timeout_s)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        pool = self.pool
        async with self._slots:
            warm = await pool.take(self.start_timeout_s)
            writer = None
            try:
                reader, writer = await attached_streams(warm.sock)
                outcome = await run_exchange(reader, writer, cell, self.limits, tools, self.name, await_close=False)
                return outcome.result
            finally:
                pool.discard(warm)  # closes the socket; the container goes, whatever it is doing
                if writer is not None:
                    writer.close()
