"""The `Sandbox` interface and the registry of backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from codetool.errors import ConfigError
from sandbox.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler


class Sandbox(ABC):
    """Runs untrusted code cells in isolation.

    A backend is started once (`start`, or `async with`), then `execute` may be called
    concurrently; `aclose` releases every worker, container or child it owns. Errors in the
    code are reported in the `ExecutionResult`; only infrastructure failures raise
    `SandboxError`.
    """

    name: ClassVar[str]

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()

    async def start(self) -> None:
        """Prepare workers or containers. Default: nothing to prepare."""

    async def aclose(self) -> None:
        """Release everything the backend holds. Default: nothing to release."""

    @abstractmethod
    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        """Run `cell`; HTTP calls from the code go to `tools` (all refused when None)."""

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


_BACKENDS: dict[str, type[Sandbox]] = {}
S = TypeVar("S", bound=type[Sandbox])


def register_backend(name: str) -> Callable[[S], S]:
    """Class decorator that makes a backend available to `create_sandbox(name)`."""

    def decorate(cls: S) -> S:
        cls.name = name
        _BACKENDS[name] = cls
        return cls

    return decorate


def available_backends() -> list[str]:
    """Names of the registered backends."""
    _load_builtin_backends()
    return sorted(_BACKENDS)


def create_sandbox(name: str, limits: SandboxLimits | None = None, **options: Any) -> Sandbox:
    """Build the backend registered as `name` (not started yet)."""
    _load_builtin_backends()
    try:
        cls = _BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown sandbox backend {name!r}; choose one of {', '.join(sorted(_BACKENDS))}") from None
    return cls(limits, **options)


def _load_builtin_backends() -> None:
    import importlib

    for module in ("sandbox.restricted", "sandbox.process", "sandbox.docker_backend"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
