"""The `restricted` backend's processes: fork server, pre-forked children, kills and clean-up.

These run without bubblewrap, so that the server's children are its children in the host's
view too (inside bubblewrap they are in a pid namespace of their own, and the host asks the
server to kill them: `test_restricted_confinement` covers that arrangement).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import Cell, SandboxLimits, ToolRequest, ToolResponse, create_sandbox
from sandbox.forkserver import ServerDirs
from sandbox.restricted import RestrictedSandbox

from .host_state import WAIT_S, processes, until
from .tool_handlers import RecordingHandler


def _children(pid: int) -> dict[int, int]:
    """Live children of `pid` -> their process group."""
    return {child: p.pgid for child, p in processes().items() if p.ppid == pid and p.state != "Z"}


def _alive(pid: int) -> bool:
    info = processes().get(pid)
    return info is not None and info.state != "Z"


def _busy_child(sandbox: RestrictedSandbox) -> int:
    """The one child running an execution: it is in its own process group."""
    [pid] = [child for child, pgid in _children(sandbox.server.pid).items() if pgid == child]
    return pid


@pytest.fixture
async def restricted(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RestrictedSandbox]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-host-secret-0042")
    async with create_sandbox("restricted", SandboxLimits(timeout_s=10, memory_mb=512), pool_size=3, bubblewrap=False) as sandbox:
        assert isinstance(sandbox, RestrictedSandbox)
        yield sandbox


async def test_the_server_runs_with_a_scrubbed_environment(restricted: RestrictedSandbox) -> None:
    environ = Path(f"/proc/{restricted.server.pid}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=", 1)[0] for item in environ if item}
    assert b"OPENAI_API_KEY" not in names
    assert names <= {b"PATH", b"HOME", b"TMPDIR", b"LANG", b"LC_ALL", b"PYTHONDONTWRITEBYTECODE", b"PYTHONIOENCODING"}


async def test_children_are_forked_ahead_of_time(restricted: RestrictedSandbox) -> None:
    server = restricted.server.pid
    await until(lambda: len(_children(server)) == 3, "three waiting children")
    assert set(_children(server).values()) == {server}  # waiting children stay in the server's group


async def test_a_dead_server_is_replaced(restricted: RestrictedSandbox) -> None:
    old = restricted.server.pid
    os.kill(old, signal.SIGKILL)
    await until(lambda: restricted.server.pid is None, "the server to be seen dead")
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
    await until(lambda: not _alive(pids[0]), "the runaway child to be gone")


async def test_a_cancelled_execution_kills_its_child(restricted: RestrictedSandbox) -> None:
    handler = RecordingHandler()
    handler.gate = asyncio.Event()
    running = asyncio.create_task(restricted.execute(Cell(code="import requests\nrequests.get('https://x.test/')"), handler))
    await asyncio.wait_for(handler.entered.wait(), WAIT_S)
    child = _busy_child(restricted)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await until(lambda: not _alive(child), "the cancelled child to be gone")


async def test_aclose_leaves_no_process_behind() -> None:
    sandbox = create_sandbox("restricted", pool_size=2, bubblewrap=False)
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
    await until(lambda: not any(_alive(pid) for pid in owned), "every process to be gone")


def test_directories_left_by_ended_processes_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = tmp_path / f"codetool-runner-{socket.gethostname()}_{ended.stdout.strip()}_0_abcd"
    foreign = tmp_path / "codetool-runner-elsewhere_1_1_abcd"
    for directory in (stale, foreign):
        directory.mkdir()
    dirs = ServerDirs.create()
    try:
        assert Path(dirs.root).parent == tmp_path
        assert not stale.exists() and foreign.exists()
    finally:
        shutil.rmtree(dirs.root)
