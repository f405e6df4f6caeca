"""The `docker` backend with one container per query: what its candidates share and what they do not."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import docker
import pytest

from sandbox import Cell, SandboxLimits, create_sandbox
from sandbox.docker_backend import DockerSandbox
from sandbox.docker_pool import OWNER_LABEL
from sandbox.docker_query import QuerySession

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


async def _open(audit_hook: bool) -> DockerSandbox:
    sandbox = create_sandbox("docker", LIMITS, pool_size=2, audit_hook=audit_hook)
    assert isinstance(sandbox, DockerSandbox) and sandbox.container_per == "query"
    await sandbox.start()
    return sandbox


@pytest.fixture
async def bare(client: docker.DockerClient) -> AsyncIterator[DockerSandbox]:
    """Per-query containers with only the OS layers (no audit hook)."""
    sandbox = await _open(audit_hook=False)
    yield sandbox
    await sandbox.aclose()


@pytest.fixture
async def hooked(client: docker.DockerClient) -> AsyncIterator[DockerSandbox]:
    """Per-query containers as configured by default (audit hook on)."""
    sandbox = await _open(audit_hook=True)
    yield sandbox
    await sandbox.aclose()


def _mine(client: docker.DockerClient, owner: str) -> set[str]:
    return {c["Id"] for c in client.api.containers(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})}


async def test_one_container_per_query_removed_at_its_end_with_the_pool_refilled_ahead(
    bare: DockerSandbox, client: docker.DockerClient
) -> None:
    owner = bare.pool.owner
    started = bare.pool.started
    code = "import os\nopen('mine', 'w').write('x')\nprint(os.getcwd(), sorted(os.listdir('.')))"
    async with bare.session("q1") as session:
        assert isinstance(session, QuerySession)
        first = await asyncio.gather(*(session.execute(Cell(code=code)) for _ in range(3)))
        second = await session.execute(Cell(code=code))
        container = session.container_id
        assert container is not None
        await bare.wait_warm()  # the pool refills while the query still runs
        assert _mine(client, owner) >= {container} and len(_mine(client, owner)) == bare.pool_size + 1
    results = [*first, second]
    assert all(r.ok for r in results), [r.error for r in results]
    directories = [r.stdout.split(" ", 1)[0] for r in results]
    assert len(set(directories)) == 4  # a fresh working directory per execution ...
    assert all(r.stdout.endswith(" ['mine']\n") for r in results)  # ... empty: only its own file in it
    assert bare.pool.started == started + 1  # four executions, one container
    await until(lambda: container not in _mine(client, owner), "the query's container to be removed", blocking=True)


async def test_no_container_is_started_ahead_beyond_the_queries_the_run_holds(client: docker.DockerClient) -> None:
    sandbox = create_sandbox("docker", LIMITS, pool_size=3, audit_hook=False, sessions=2)
    assert isinstance(sandbox, DockerSandbox)
    async with sandbox:
        await sandbox.wait_warm()
        assert sandbox.pool.started == 2
        for key in ("q1", "q2", "q3"):  # a third query (a retry, say) gets one started for it
            async with sandbox.session(key) as session:
                result = await session.execute(Cell(code="print(1)"))
            assert result.ok and result.stdout == "1\n", result.error
        assert (sandbox.pool.started, sandbox.pool.warm) == (3, 0)


async def test_a_discarded_container_stops_before_its_removal(bare: DockerSandbox, client: docker.DockerClient) -> None:
    hold = threading.Event()
    bare.pool._remover.submit(hold.wait, WAIT_S)  # the removal thread is busy: the container waits its turn
    try:
        warm = await bare.pool.take(WAIT_S)
        bare.pool.discard(warm)
        await until(
            lambda: not client.api.inspect_container(warm.container.id)["State"]["Running"],
            "the discarded container to stop by itself",
            blocking=True,
        )
    finally:
        hold.set()
    await until(lambda: warm.container.id not in _mine(client, bare.pool.owner), "its removal", blocking=True)


async def test_a_candidate_cannot_signal_a_sibling(bare: DockerSandbox) -> None:
    handler = RecordingHandler(default=json_response({}))
    handler.gate = asyncio.Event()
    waiting = "import os, requests\nrequests.get('https://api.test/wait', params={'pid': os.getpid(), 'parent': os.getppid()})\nprint('alive')"
    async with bare.session("q") as session:
        sibling = asyncio.create_task(session.execute(Cell(code=waiting), handler))
        await asyncio.wait_for(handler.entered.wait(), WAIT_S)
        pids = handler.requests[0].params
        attack = (
            "import os, signal\n"
            f"for pid in ({pids['pid']}, {pids['parent']}):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "        print('killed', pid)\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
            "for name in ('environ', 'mem'):\n"
            "    try:\n"
            f"        open('/proc/{pids['pid']}/' + name, 'rb').read(1)\n"
            "        print('read', name)\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
        )
        attacked = await session.execute(Cell(code=attack))
        handler.gate.set()
        survived = await sibling
    assert attacked.ok and attacked.stdout == "PermissionError\n" * 4, attacked.stdout
    assert survived.ok and survived.stdout == "alive\n", survived.error


async def test_a_candidate_cannot_read_a_siblings_files(hooked: DockerSandbox) -> None:
    handler = RecordingHandler(default=json_response({}))
    handler.gate = asyncio.Event()
    waiting = "import os, requests\nopen('secret', 'w').write('s3')\nrequests.get('https://api.test/wait', params={'dir': os.getcwd()})\nprint(open('secret').read())"
    async with hooked.session("q") as session:
        sibling = asyncio.create_task(session.execute(Cell(code=waiting), handler))
        await asyncio.wait_for(handler.entered.wait(), WAIT_S)
        directory = handler.requests[0].params["dir"]
        snoop = f"for path in ({directory!r} + '/secret', '/tmp'):\n    try:\n        print(open(path).read() if 'secret' in path else __import__('os').listdir(path))\n    except OSError as exc:\n        print(type(exc).__name__)\n"
        snooped = await session.execute(Cell(code=snoop))
        handler.gate.set()
        owner = await sibling
    assert snooped.ok and snooped.stdout == "PermissionError\nPermissionError\n", snooped.stdout
    assert owner.ok and owner.stdout == "s3\n", owner.error


async def test_a_background_process_does_not_outlive_its_execution(bare: DockerSandbox) -> None:
    daemon = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setsid()\n"
        "    while True:\n"
        "        time.sleep(1)\n"
        "print(pid)\n"
    )
    async with bare.session("q") as session:
        left = await session.execute(Cell(code=daemon))
        assert left.ok, left.error
        pid = int(left.stdout)
        after = await session.execute(Cell(code=f"import os\nprint(os.path.exists('/proc/{pid}'))"))
    assert after.ok and after.stdout == "False\n", after.stdout


async def test_a_query_that_runs_nothing_gives_its_container_back(bare: DockerSandbox, client: docker.DockerClient) -> None:
    owner = bare.pool.owner
    await bare.wait_warm()
    before = _mine(client, owner)
    async with bare.session("q"):
        pass
    await bare.wait_warm()
    await until(lambda: len(_mine(client, owner)) == bare.pool_size, "only the refilled pool to be left", blocking=True)
    assert len(before - _mine(client, owner)) <= 1


async def test_a_fork_bomb_does_not_take_the_query_down(bare: DockerSandbox) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    bare.limits = LIMITS.model_copy(update={"timeout_s": 2})
    async with bare.session("q") as session:
        # siblings take spares while the container's pids are spent: the server must fork their replacements later
        during = await asyncio.gather(session.execute(Cell(code=bomb)), *(session.execute(Cell(code="print(1)")) for _ in range(3)))
        after = [await session.execute(Cell(code="print('after')")) for _ in range(3)]
    assert not during[0].ok
    assert [(r.ok, r.stdout) for r in after] == [(True, "after\n")] * 3, [r.error for r in after]
