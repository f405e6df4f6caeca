"""The `restricted` backend's processes: fork server, pre-forked children, kills and clean-up."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sandbox import Cell, SandboxLimits, ToolRequest, ToolResponse, create_sandbox
from sandbox.restricted import RestrictedSandbox

from .tool_handlers import RecordingHandler

WAIT_S = 10.0


def _processes() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group) for every process we can see."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            state, ppid, pgid = stat.rsplit(")", 1)[1].split()[:3]
            found[int(entry)] = (state, int(ppid), int(pgid))
    return found


def _children(pid: int) -> dict[int, int]:
    """Live children of `pid` -> their process group."""
    return {child: pgid for child, (state, ppid, pgid) in _processes().items() if ppid == pid and state != "Z"}


def _alive(pid: int) -> bool:
    info = _processes().get(pid)
    return info is not None and info[0] != "Z"


async def _until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


def _busy_child(sandbox: RestrictedSandbox) -> int:
    """The one child running an execution: it is in its own process group."""
    [pid] = [child for child, pgid in _children(sandbox.server.pid).items() if pgid == child]
    return pid


@pytest.fixture
async def restricted(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RestrictedSandbox]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-host-secret-0042")
    async with create_sandbox("restricted", SandboxLimits(timeout_s=10, memory_mb=512), pool_size=3) as sandbox:
        assert isinstance(sandbox, RestrictedSandbox)
        yield sandbox


async def test_the_server_runs_with_a_scrubbed_environment(restricted: RestrictedSandbox) -> None:
    environ = Path(f"/proc/{restricted.server.pid}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=", 1)[0] for item in environ if item}
    assert b"OPENAI_API_KEY" not in names
    assert names <= {b"PATH", b"HOME", b"TMPDIR", b"LANG", b"LC_ALL", b"PYTHONDONTWRITEBYTECODE", b"PYTHONIOENCODING"}


async def test_children_are_forked_ahead_of_time(restricted: RestrictedSandbox) -> None:
    server = restricted.server.pid
    await _until(lambda: len(_children(server)) == 3, "three waiting children")
    assert set(_children(server).values()) == {server}  # waiting children stay in the server's group


async def test_a_dead_server_is_replaced(restricted: RestrictedSandbox) -> None:
    old = restricted.server.pid
    os.kill(old, signal.SIGKILL)
    await _until(lambda: restricted.server.pid is None, "the server to be seen dead")
    result = await restricted.execute(Cell(code="print('back')"))
    assert result.ok and result.stdout == "back\n"
    assert restricted.server.pid not in (None, old)
    assert restricted.server.restarts == 1


async def test_a_child_killed_mid_execution_is_a_failed_execution(restricted: RestrictedSandbox) -> None:
    handler = RecordingHandler()
    handler.gate = asyncio.Event()
    running = asyncio.create_task(restricted.execute(Cell(code="import requests\nrequests.get('https://x.test/')\nprint('done')"), handler))
    await asyncio.wait_for(handler.entered.wait(), WAIT_S)
    os.kill(_busy_child(restricted), signal.SIGKILL)
    result = await asyncio.wait_for(running, WAIT_S)
    handler.gate.set()
    assert not result.ok
    assert result.error_type == "SandboxCrash"
    assert "without a result" in result.error
    assert (await restricted.execute(Cell(code="print('next')"))).stdout == "next\n"


async def test_a_child_that_ignores_its_timeout_is_killed(restricted: RestrictedSandbox) -> None:
    handler = RecordingHandler()
    pids: list[int] = []

    async def spy(request: ToolRequest) -> ToolResponse:
        pids.append(_busy_child(restricted))
        return await handler(request)

    code = "import requests\nrequests.get('https://x.test/')\nwhile True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
    restricted.limits = SandboxLimits(timeout_s=0.5)
    result = await restricted.execute(Cell(code=code), spy)
    assert result.timed_out
    await _until(lambda: not _alive(pids[0]), "the runaway child to be gone")


async def test_a_cancelled_execution_kills_its_child(restricted: RestrictedSandbox) -> None:
    handler = RecordingHandler()
    handler.gate = asyncio.Event()
    running = asyncio.create_task(restricted.execute(Cell(code="import requests\nrequests.get('https://x.test/')"), handler))
    await asyncio.wait_for(handler.entered.wait(), WAIT_S)
    child = _busy_child(restricted)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await _until(lambda: not _alive(child), "the cancelled child to be gone")


async def test_aclose_leaves_no_process_behind() -> None:
    sandbox = create_sandbox("restricted", pool_size=2)
    await sandbox.start()
    assert isinstance(sandbox, RestrictedSandbox)
    handler = RecordingHandler()
    handler.gate = asyncio.Event()
    running = asyncio.create_task(sandbox.execute(Cell(code="import requests\nrequests.get('https://x.test/')"), handler))
    await asyncio.wait_for(handler.entered.wait(), WAIT_S)
    server = sandbox.server.pid
    owned = {server, *_children(server)}
    assert len(owned) >= 3  # the server, the busy child, waiting children
    await sandbox.aclose()
    result = await asyncio.wait_for(running, WAIT_S)
    assert not result.ok
    await _until(lambda: not any(_alive(pid) for pid in owned), "every process to be gone")
