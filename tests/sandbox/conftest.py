"""Fixtures shared by the sandbox tests: every behavioural test runs on each backend in BACKENDS.

Docker tests need a reachable engine and the sandbox image (`python -m sandbox build-image`).
Where either is missing they skip with the reason, except when `CODETOOL_REQUIRE_DOCKER=1`
(CI sets it): then they fail. That rule lives here, in `require_docker`, and nowhere else.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sandbox import Sandbox, SandboxLimits, create_sandbox

BACKENDS = ["restricted", "process", pytest.param("docker", marks=pytest.mark.docker)]
TEST_LIMITS = SandboxLimits(timeout_s=10, cpu_s=10, memory_mb=512, output_bytes=64_000, max_api_calls=20)

MakeSandbox = Callable[..., Awaitable[Sandbox]]


@functools.cache
def _docker_missing() -> str | None:
    from docker.errors import DockerException

    from sandbox.docker_engine import connect
    from sandbox.image import default_image_tag

    try:
        client = connect(timeout_s=10)
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine to test against
        return str(exc)
    try:
        client.images.get(default_image_tag())
    except DockerException:
        return f"the sandbox image {default_image_tag()} is not built (run `python -m sandbox build-image`)"
    finally:
        client.close()
    return None


def require_docker() -> None:
    """Skip the calling test when Docker or the image is missing; fail instead in CI."""
    reason = _docker_missing()
    if reason is None:
        return
    if os.environ.get("CODETOOL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CODETOOL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def open_sandbox_options(backend: str, pool_size: int) -> dict[str, Any]:
    """The options every test passes to `create_sandbox` (after checking docker when needed)."""
    if backend == "docker":
        require_docker()
    return {"pool_size": pool_size}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def make_sandbox(backend: str) -> AsyncIterator[MakeSandbox]:
    """Start a sandbox of the current backend; `limits` fields override TEST_LIMITS."""
    opened: list[Sandbox] = []

    async def make(pool_size: int = 2, **limits: Any) -> Sandbox:
        sandbox = create_sandbox(backend, TEST_LIMITS.model_copy(update=limits), **open_sandbox_options(backend, pool_size))
        opened.append(sandbox)
        await sandbox.start()
        return sandbox

    yield make
    for sandbox in opened:
        await sandbox.aclose()


@pytest.fixture
async def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return await make_sandbox()
