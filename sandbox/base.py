"""The `Sandbox` interface and the registry of backends."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler
from codetool_kernel.registry import Registry


class SandboxSession(Protocol):
    """Where the executions of one query run (`Sandbox.session`)."""

    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        """Run `cell` like `Sandbox.execute`, as part of this session's query."""
        ...


class Sandbox(AsyncLifecycle, ABC):
    """Runs untrusted code cells in isolation.

    A backend is started once (`start`, or `async with`), then `execute` may be called
    concurrently; `aclose` releases every worker, container or child it owns. Errors in the
    code are reported in the `ExecutionResult`; only infrastructure failures raise
    `SandboxError`.
    """

    name: ClassVar[str]

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()

    @abstractmethod
    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        """Run `cell`; HTTP calls from the code go to `tools` (all refused when None)."""

    @contextlib.asynccontextmanager
    async def session(self, key: str) -> AsyncIterator[SandboxSession]:
        """The executions of one query (`key` names it), from its search's start to its end.

        Every execution stays as isolated as `execute`'s; a backend may share what lies
        around them among one query's executions (the `docker` backend: one container per
        query). This one runs each through `execute`.
        """
        yield self

    @classmethod
    def pool_per_query(cls, options: Mapping[str, Any]) -> bool:
        """Whether, built with `options`, each query takes its own warm worker from the pool.

        A run then sizes `pool_size` to its concurrency unless the user set it.
        """
        return False


BACKENDS: Registry[type[Sandbox]] = Registry("sandbox backend", ("sandbox.restricted", "sandbox.process", "sandbox.docker_backend"), group="codetool.sandboxes")
S = TypeVar("S", bound=type[Sandbox])


def register_backend(name: str) -> Callable[[S], S]:
    """Class decorator that makes a backend available to `create_sandbox(name)`."""
    return BACKENDS.register(name)


def available_backends() -> list[str]:
    """Names of the registered backends."""
    return BACKENDS.names()


def create_sandbox(name: str, limits: SandboxLimits | None = None, **options: Any) -> Sandbox:
    """Build the backend registered as `name` (not started yet)."""
    return BACKENDS.get(name)(limits, **options)
