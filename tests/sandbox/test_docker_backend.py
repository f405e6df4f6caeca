"""The `docker` backend's containers: how they are locked down, removed, and reaped."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import docker
import pytest

from codetool_kernel.errors import SandboxError
from sandbox import Cell, SandboxLimits, create_sandbox
from sandbox.docker_backend import DockerSandbox
from sandbox.docker_pool import OWNER_LABEL, SANDBOX_LABEL
from sandbox.image import default_image_tag
from sandbox.owner import owner_token

from .conftest import require_docker
from .host_state import WAIT_S, until
from .tool_handlers import RecordingHandler, json_response

pytestmark = pytest.mark.docker
LIMITS = SandboxLimits(timeout_s=10, memory_mb=256)


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    require_docker()
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(params=["query", "execution"], ids=["per-query", "per-execution"])
async def sandbox(client: docker.DockerClient, request: pytest.FixtureRequest) -> AsyncIterator[DockerSandbox]:
    """A docker sandbox with only the container's own bounds (no audit hook), in each container setting."""
    sandbox = create_sandbox("docker", LIMITS, pool_size=2, audit_hook=False, container_per=request.param)
    assert isinstance(sandbox, DockerSandbox)
    async with sandbox:
        yield sandbox


def _mine(client: docker.DockerClient, owner: str) -> list[str]:
    return [c["Id"] for c in client.api.containers(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})]


async def test_warm_containers_are_locked_down(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    [first, *_] = _mine(client, sandbox.pool.owner)
    attrs = client.api.inspect_container(first)
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == 64
    executions = sandbox.query_executions if sandbox.container_per == "query" else 1
    assert host["Memory"] == (256 * executions + 64) * 1024 * 1024 and host["MemorySwap"] == host["Memory"]
    assert host["NanoCpus"] == 1_000_000_000
    assert host["LogConfig"]["Type"] == "none"
    assert "/tmp" in host["Tmpfs"] and "size=64m" in host["Tmpfs"]["/tmp"]
    assert attrs["Config"]["User"] == "65534:65534"
    assert attrs["Config"]["Image"] == default_image_tag()
    assert attrs["Config"]["Labels"][SANDBOX_LABEL] == "1"
    binds = host["Binds"] or []
    if sandbox.container_per == "query":  # only the directory of its fork server's socket, the container's own
        [bind] = binds
        source, target, mode = bind.split(":")
        assert (target, mode) == ("/run/codetool", "rw") and os.stat(source).st_uid == 65534
    else:
        assert binds == []


async def test_the_code_runs_unprivileged_in_a_private_tmp(sandbox: DockerSandbox) -> None:
    code = (
        "import errno, os, sys\n"
        "open('note.txt', 'w').write('x')\n"
        "print(os.getuid(), os.getcwd(), os.listdir('.'))\n"
        "print('to stderr', file=sys.stderr)\n"
        "try:\n"
        "    open('/opt/codetool/runner/evil.py', 'w')\n"
        "except OSError as exc:\n"
        "    print(errno.errorcode[exc.errno])\n"
    )
    result = await sandbox.execute(Cell(code=code))
    assert result.ok, result.error
    uid, cwd, rest = result.stdout.split(" ", 2)
    assert uid == "65534" and rest in ("['note.txt']\nEROFS\n", "['note.txt']\nEACCES\n")
    assert cwd == "/tmp" if sandbox.container_per == "execution" else re.fullmatch(r"/tmp/\d+", cwd)
    assert result.stderr == "to stderr\n"


async def test_tool_calls_go_through_the_host(sandbox: DockerSandbox) -> None:
    handler = RecordingHandler(default=json_response({"name": "Alien"}))
    code = "import requests\nprint(requests.get('https://api.example.test/movie', params={'id': 1}).json()['name'])"
    result = await sandbox.execute(Cell(code=code), handler)
    assert result.stdout == "Alien\n"
    assert [r.params for r in handler.requests] == [{"id": 1}]


async def test_every_container_is_removed_after_its_one_execution(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    owner = sandbox.pool.owner
    before = set(_mine(client, owner))
    results = await asyncio.gather(*(sandbox.execute(Cell(code="print(1)")) for _ in range(3)))
    assert [r.stdout for r in results] == ["1\n"] * 3
    await until(lambda: not before & set(_mine(client, owner)), "the used containers to be removed", blocking=True)
    await sandbox.wait_warm()
    await until(lambda: len(_mine(client, owner)) == sandbox.pool_size, "only the refilled pool to be left", blocking=True)


async def test_a_timed_out_container_is_removed(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    sandbox.limits = SandboxLimits(timeout_s=0.5)
    owner = sandbox.pool.owner
    before = set(_mine(client, owner))
    code = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
    result = await sandbox.execute(Cell(code=code))
    assert result.timed_out
    await until(lambda: len(before - set(_mine(client, owner))) >= 1, "the runaway container to be removed", blocking=True)


async def test_aclose_removes_every_container(client: docker.DockerClient) -> None:
    sandbox = create_sandbox("docker", LIMITS, pool_size=2)
    assert isinstance(sandbox, DockerSandbox)
    await sandbox.start()
    owner = sandbox.pool.owner
    handler = RecordingHandler()
    handler.gate = asyncio.Event()
    running = asyncio.create_task(sandbox.execute(Cell(code="import requests\nrequests.get('https://x.test/')"), handler))
    await asyncio.wait_for(handler.entered.wait(), WAIT_S)
    assert len(_mine(client, owner)) >= 2
    await sandbox.aclose()
    handler.gate.set()
    await asyncio.gather(running, return_exceptions=True)
    assert _mine(client, owner) == []


async def test_the_reaper_removes_what_dead_processes_left(client: docker.DockerClient) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_owner = owner_token().rsplit(":", 2)[0] + f":{dead.stdout.strip()}:0"
    labels = {SANDBOX_LABEL: "1"}
    stale = client.containers.create(default_image_tag(), command=["true"], labels={**labels, OWNER_LABEL: dead_owner})
    alive = client.containers.create(default_image_tag(), command=["true"], labels={**labels, OWNER_LABEL: owner_token()})
    foreign = client.containers.create(default_image_tag(), command=["true"], labels={**labels, OWNER_LABEL: "elsewhere:1:1"})
    try:
        async with create_sandbox("docker", LIMITS, pool_size=1):
            remaining = {c["Id"] for c in client.api.containers(all=True, filters={"label": SANDBOX_LABEL})}
        assert stale.id not in remaining
        assert {alive.id, foreign.id} <= remaining
    finally:
        for container in (stale, alive, foreign):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


async def test_a_missing_image_is_a_clear_error(client: docker.DockerClient) -> None:
    sandbox = create_sandbox("docker", LIMITS, image="codetool-sandbox:no-such-tag")
    with pytest.raises(SandboxError, match="no-such-tag not found: build it with `python -m sandbox build-image`"):
        await sandbox.start()


async def test_the_audit_hook_is_on_inside_the_container_by_default(client: docker.DockerClient) -> None:
    async with create_sandbox("docker", LIMITS, pool_size=1) as sandbox:
        refused = await sandbox.execute(Cell(code="import subprocess\nsubprocess.run(['true'])"))
        allowed = await sandbox.execute(Cell(code="open('x', 'w').write('ok')\nprint(open('x').read())"))
    assert refused.error == "PermissionError: subprocess.Popen is not allowed in the sandbox"
    assert allowed.ok and allowed.stdout == "ok\n"
