"""The `process` backend's layers, each checked on its own (the audit hook off unless said).

Which layers can be on depends on the machine: bubblewrap and root give all of them (as
in CI); elsewhere the backend must say which are off and why, and the rest must hold.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import Cell, SandboxLimits, create_sandbox
from sandbox.process import LAYER_FILESYSTEM, LAYER_HOOK, LAYER_NPROC, LAYER_PID, ON, ProcessSandbox
from sandbox.runner.confine import LAYER_NETWORK, LAYER_UID, LAYER_WORKDIR

from .host_state import processes, until
from .tool_handlers import RecordingHandler

LIMITS = SandboxLimits(timeout_s=5, cpu_s=5, memory_mb=256)
ROOT = os.geteuid() == 0


def _host_processes_in_uids(first: int, count: int) -> dict[int, str]:
    """pid -> state of every host process whose real uid is in [first, first + count)."""
    return {pid: p.state for pid, p in processes().items() if first <= p.uid < first + count}


@pytest.fixture(params=[True, False], ids=["bubblewrap", "no-bubblewrap"])
async def bare(request: pytest.FixtureRequest) -> AsyncIterator[ProcessSandbox]:
    """A process sandbox with only the operating-system layers (no audit hook)."""
    sandbox = create_sandbox("process", LIMITS, pool_size=2, audit_hook=False, bubblewrap=request.param)
    assert isinstance(sandbox, ProcessSandbox)
    async with sandbox:
        yield sandbox


async def test_every_layer_is_reported_on_or_off_with_a_reason(bare: ProcessSandbox) -> None:
    assert set(bare.layers) >= {LAYER_FILESYSTEM, LAYER_PID, LAYER_NETWORK, LAYER_UID, LAYER_NPROC, LAYER_WORKDIR, LAYER_HOOK}
    for name, state in bare.layers.items():
        assert state == ON or (state.startswith("off: ") and len(state) > 6), (name, state)
    assert bare.layers[LAYER_HOOK] == "off: turned off (audit_hook=False)"
    if not bare.use_bubblewrap:
        assert bare.layers[LAYER_FILESYSTEM] == "off: turned off (bubblewrap=False)"
    elif shutil.which("bwrap") and ROOT:
        assert bare.layers[LAYER_FILESYSTEM] == ON and bare.layers[LAYER_PID] == ON
    assert (bare.layers[LAYER_UID] == ON) == ROOT
    assert bare.layers[LAYER_NETWORK] == ON


async def test_no_network_without_the_audit_hook(bare: ProcessSandbox) -> None:
    if bare.layers[LAYER_NETWORK] != ON:
        assert bare.layers[LAYER_NETWORK].startswith("off: ")
        return
    code = (
        "import socket\n"
        "print(sorted(name for _, name in socket.if_nameindex()))\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=1)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    result = await bare.execute(Cell(code=code))
    assert result.ok, result.error
    assert result.stdout == "['lo']\nOSError\n"


async def test_each_child_runs_as_an_unprivileged_uid_of_its_own(bare: ProcessSandbox) -> None:
    handler = RecordingHandler()
    handler.gate = asyncio.Event()
    code = "import os, requests\nrequests.get('https://x.test/')\nprint(os.getuid(), os.getgid(), os.getgroups())"
    both = asyncio.gather(*(bare.execute(Cell(code=code), handler) for _ in range(2)))
    await until(lambda: len(handler.requests) == 2, "both executions inside their API call")
    handler.gate.set()
    outputs = [result.stdout.split(" ", 2) for result in await both]
    uids = {int(uid) for uid, _, _ in outputs}
    if ROOT:
        assert len(uids) == 2 and all(bare.uid_first <= uid < bare.uid_first + bare.uid_count for uid in uids)
        assert all(groups.strip() == "[]" for _, _, groups in outputs)
    else:
        assert uids == {os.getuid()}


async def test_the_working_directory_is_private_and_fresh(bare: ProcessSandbox) -> None:
    first = await bare.execute(Cell(code="import os\nopen('mine.txt', 'w').write('x')\nprint(os.getcwd(), os.listdir('.'))"))
    assert first.ok, first.error
    workdir = first.stdout.split()[0]
    second = await bare.execute(Cell(code="import os\nprint(os.getcwd(), os.listdir('.'))"))
    assert second.stdout.split()[1:] == ["[]"]
    assert not Path(workdir, "mine.txt").exists()  # nothing of it on the host either


async def test_the_host_filesystem_is_out_of_sight_with_bubblewrap(bare: ProcessSandbox, tmp_path: Path) -> None:
    code = (
        "import json, os\n"
        "try:\n"
        "    open('/usr/codetool-probe', 'w')\n"
        "    writable = True\n"
        "except OSError:\n"
        "    writable = False\n"
        f"print(json.dumps([sorted(os.listdir('/')), os.path.exists({str(tmp_path)!r}), os.path.exists('/etc/passwd'), writable]))\n"
    )
    result = await bare.execute(Cell(code=code))
    assert result.ok, result.error
    top, sees_host_tmp, sees_etc, writable = json.loads(result.stdout)
    assert not writable
    if bare.layers[LAYER_FILESYSTEM] == ON:
        assert set(top) <= {"bin", "dev", "lib", "lib32", "lib64", "libx32", "opt", "proc", "root", "sbin", "tmp", "usr"}
        assert not sees_host_tmp and not sees_etc
    else:
        assert sees_etc  # the fallback: the host's files, guarded by permissions (and the audit hook)


async def test_processes_left_behind_are_killed(bare: ProcessSandbox) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    while True:\n"
        "        time.sleep(1)\n"
        "print('left one behind')\n"
    )
    result = await bare.execute(Cell(code=code))
    assert result.ok and result.stdout == "left one behind\n", result.error
    if ROOT:  # only the waiting spares (each with the child forked for its cell) may keep a sandbox uid
        first, count = bare.uid_first, bare.uid_count
        await until(lambda: len(_host_processes_in_uids(first, count)) == 2 * bare.pool_size, "the orphan to be killed")


async def test_a_fork_bomb_is_stopped_by_the_process_limit(bare: ProcessSandbox) -> None:
    result = await bare.execute(Cell(code="import os\nwhile True:\n    os.fork()\n"))
    assert not result.ok
    if ROOT:
        assert result.error_type == "BlockingIOError", result.error
    assert (await bare.execute(Cell(code="print('after')"))).stdout == "after\n"


async def test_signals_cannot_reach_the_server_or_the_host(bare: ProcessSandbox) -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        code = (
            "import os, signal\n"
            f"for pid in (os.getppid(), {victim.pid}):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "        print('killed', pid)\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
        )
        result = await bare.execute(Cell(code=code))
        assert victim.poll() is None
        if ROOT:
            assert "killed" not in result.stdout, result.stdout
        server = bare.server.pid
        assert (await bare.execute(Cell(code="print('served')"))).stdout == "served\n"
        if ROOT:
            assert bare.server.pid == server
    finally:
        victim.kill()
        victim.wait()


async def test_a_runaway_child_is_killed_through_the_server() -> None:
    async with create_sandbox("process", SandboxLimits(timeout_s=0.5, cpu_s=30), pool_size=1) as sandbox:
        assert isinstance(sandbox, ProcessSandbox)
        code = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
        result = await sandbox.execute(Cell(code=code))
        assert result.timed_out
        if ROOT:
            first, count = sandbox.uid_first, sandbox.uid_count
            await until(lambda: "R" not in _host_processes_in_uids(first, count).values(), "no child left running")
        assert (await sandbox.execute(Cell(code="print('next')"))).stdout == "next\n"


async def test_the_audit_hook_refuses_with_a_clear_error() -> None:
    async with create_sandbox("process", LIMITS, pool_size=1) as sandbox:
        result = await sandbox.execute(Cell(code="import subprocess\nsubprocess.run(['true'])"))
        assert result.error == "PermissionError: subprocess.Popen is not allowed in the sandbox"
        allowed = await sandbox.execute(Cell(code="import statistics, urllib.parse\nprint(urllib.parse.quote('a b'))"))
        assert allowed.ok and allowed.stdout == "a%20b\n"


async def test_only_the_runner_answers_not_a_copy_the_code_forked(bare: ProcessSandbox) -> None:
    code = "import os, sys\npid = os.fork()\nprint('parent' if pid else 'child')\nprint('err', file=sys.stderr)\nif pid:\n    os.waitpid(pid, 0)\n"
    results = [await bare.execute(Cell(code=code)) for _ in range(3)]
    assert [(r.ok, r.stdout, r.stderr) for r in results] == [(True, "parent\n", "err\n")] * 3
