"""Fixtures shared by the sandbox tests: every behavioural test runs on each backend in BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sandbox import Sandbox, SandboxLimits, create_sandbox

BACKENDS = ["restricted"]
TEST_LIMITS = SandboxLimits(timeout_s=10, cpu_s=10, memory_mb=512, output_bytes=64_000, max_api_calls=20)

MakeSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def make_sandbox(backend: str) -> AsyncIterator[MakeSandbox]:
    """Start a sandbox of the current backend; `limits` fields override TEST_LIMITS."""
    opened: list[Sandbox] = []

    async def make(pool_size: int = 2, **limits: Any) -> Sandbox:
        sandbox = create_sandbox(backend, TEST_LIMITS.model_copy(update=limits), pool_size=pool_size)
        opened.append(sandbox)
        await sandbox.start()
        return sandbox

    yield make
    for sandbox in opened:
        await sandbox.aclose()


@pytest.fixture
async def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return await make_sandbox()
