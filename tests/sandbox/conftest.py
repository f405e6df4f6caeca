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
import pytest_asyncio

from sandbox import Sandbox, SandboxLimits, create_sandbox

BACKENDS = ["restricted", "process", pytest.param("docker", marks=pytest.mark.docker)]
ESCAPE_LIMITS = SandboxLimits(timeout_s=4, cpu_s=4, memory_mb=256, output_bytes=20_000, max_api_calls=3)
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


VARIANTS = [
    pytest.param(("restricted", {}), id="restricted"),
    pytest.param(("process", {}), id="process"),
    pytest.param(("process", {"audit_hook": False}), id="process-no-hook"),
    pytest.param(("docker", {}), id="docker", marks=pytest.mark.docker),
    pytest.param(("docker", {"audit_hook": False}), id="docker-no-hook", marks=pytest.mark.docker),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=VARIANTS)
async def escape_variant(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Sandbox, bool]]:
    """A started sandbox for the escape suites, and whether it runs with its in-sandbox policy.

    Each backend as configured by default, and `process` and `docker` without the audit hook
    too, so that what the supervisor and the operating system do is tested on its own, with
    code that can reach its descriptors, fork and exec.
    """
    backend, extra = request.param
    options: dict[str, Any] = {**open_sandbox_options(backend, pool_size=2), **extra}
    async with create_sandbox(backend, ESCAPE_LIMITS, **options) as sandbox:
        yield sandbox, extra.get("audit_hook", True)
