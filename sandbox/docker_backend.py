"""The `docker` backend: each query (or each execution) in its own disposable, locked-down container.

A warm pool (`sandbox.docker_pool`) keeps `pool_size` containers started ahead of need.
With `container_per="query"` (the default on a root host; elsewhere "execution") each runs the runner's fork server, and a
query's session (`session`) takes one: every candidate of the query runs as a fresh,
confined child of that server, in its own empty directory (`sandbox.docker_query`), and
the container is removed when the query ends. Candidates of one query share the
container's tmpfs, pids and memory budget (sized for `query_executions` at once), its
uid and its view of the process table, but not working directories or processes: the
seccomp filter keeps them from signalling or tracing each other, and the audit hook
keeps each to its own directory. With `container_per="execution"` (stricter, about as
fast as a container start allows) an execution takes a container whose runner waits on
its stdin, holds the conversation over the attach socket (`sandbox.docker_stream`), and
the container is removed afterwards, whatever happened. Tool calls always go through the
host's gateway. Containers have no network, a read-only root, a small tmpfs `/tmp`
(the code's working directory), no capabilities, no-new-privileges, a non-root user,
pids/memory/CPU limits and no log driver. The image is `python -m sandbox build-image`'s.
The runner installs the process backend's audit hook too (`audit_hook=False` turns it
off), so the same code gets the same verdict on `process` and `docker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import docker
import structlog
from docker.errors import DockerException, ImageNotFound

from codetool_kernel.errors import ConfigError, SandboxError
from codetool_kernel.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler
from sandbox.base import Sandbox, SandboxSession, register_backend
from sandbox.docker_engine import connect, docker_error
from sandbox.docker_pool import ContainerPool, ContainerSpec
from sandbox.docker_query import QuerySession, fork_server_command, fork_server_ready
from sandbox.docker_stream import attached_streams
from sandbox.exchange import run_exchange
from sandbox.image import IMAGE_COMMAND, default_image_tag

log = structlog.get_logger(__name__)

ContainerPer = Literal["query", "execution"]
CONTAINER_PER: tuple[ContainerPer, ...] = ("query", "execution")


@register_backend("docker")
class DockerSandbox(Sandbox):
    """Runs plain Python cells in disposable containers from a warm pool, one per query or per execution."""

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
        container_per: ContainerPer | None = None,
        query_executions: int = 4,
        sessions: int | None = None,
    ) -> None:
        super().__init__(limits)
        if pool_size < 1 or query_executions < 1 or any(v is not None and v < 1 for v in (concurrency, sessions)):
            raise ConfigError(
                "docker sandbox: pool_size, query_executions, concurrency and sessions must be >= 1, "
                f"got {pool_size}, {query_executions}, {concurrency} and {sessions}"
            )
        if container_per is None:
            container_per = _default_container_per()
            if container_per == "execution":
                log.info("docker sandbox: a container per execution (a container per query needs a root host)")
        if container_per not in CONTAINER_PER:
            raise ConfigError(f"docker sandbox: container_per must be one of {', '.join(CONTAINER_PER)}, got {container_per!r}")
        self.pool_size = pool_size
        self.concurrency = concurrency or pool_size
        """Executions at once (`container_per="execution"`); a query runs up to `query_executions` at once."""
        self.container_per = container_per
        self.query_executions = query_executions
        self.sessions = sessions if container_per == "query" else None
        """Query sessions the run opens in all, when known: no container is started ahead beyond them."""
        self.start_timeout_s = start_timeout_s
        runner = [*IMAGE_COMMAND, "--audit-hook"] if audit_hook else list(IMAGE_COMMAND)
        per_query = container_per == "query"
        command = fork_server_command(tuple(runner), query_executions) if per_query else (runner if audit_hook else None)
        self.spec = ContainerSpec(
            image or default_image_tag(), self.limits, cpus=cpus, pids=pids, tmp_mb=tmp_mb, command=command,
            fork_server=per_query, executions=query_executions if per_query else 1,
        )  # fmt: skip
        self._threads = threads or max(2, min(8, pool_size))
        self._slots = asyncio.Semaphore(self.concurrency)
        self._client: docker.DockerClient | None = None
        self._pool: ContainerPool | None = None

    @classmethod
    def pool_per_query(cls, options: Mapping[str, Any]) -> bool:
        return (options.get("container_per") or _default_container_per()) == "query"

    @property
    def pool(self) -> ContainerPool:
        if self._pool is None:
            raise SandboxError("the docker sandbox is not started (use `async with` or `await start()`)")
        return self._pool

    async def start(self) -> None:
        """Connect, check the image, reap leftovers of crashed runs, start filling the pool; wait for one container."""
        if self._pool is not None:
            return
        if self.spec.fork_server and os.geteuid() != 0:
            raise ConfigError(
                "docker sandbox: container_per='query' needs the host process to run as root "
                "(it connects to a socket the container's user owns); use container_per='execution'"
            )
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
        warm_up = functools.partial(fork_server_ready, timeout_s=self.start_timeout_s) if self.spec.fork_server else None
        self._pool = ContainerPool(client, self.spec, self.pool_size, self._threads, warm_up, expected=self.sessions)
        try:
            await self._pool.reap_leftovers()
            self._pool.fill()
            await self._pool.wait_warm(1, self.start_timeout_s)  # the image runs; the rest start while queries begin
        except BaseException:
            await self.aclose()
            raise

    async def wait_warm(self) -> None:
        """Wait until the pool is full again (benchmarks measure a warm pool this way)."""
        await self.pool.wait_warm(self.pool.target, self.start_timeout_s)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @contextlib.asynccontextmanager
    async def session(self, key: str) -> AsyncIterator[SandboxSession]:
        """One container for the whole query (`container_per="query"`), taken ahead of its first execution."""
        if not self.spec.fork_server:
            yield self
            return
        session = QuerySession(self.pool, self.limits, self.name, executions=self.query_executions, timeout_s=self.start_timeout_s)
        try:
            yield session
        finally:
            await session.aclose()

    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        if self.spec.fork_server:  # a query of its own
            async with self.session("") as session:
                return await session.execute(cell, tools)
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


def _default_container_per() -> ContainerPer:
    # the host reaches a per-query container's fork server through a socket its user owns: root only
    return "query" if os.geteuid() == 0 else "execution"
