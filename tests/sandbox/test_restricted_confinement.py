"""The `restricted` backend's operating-system layers, seen from the host.

RestrictedPython is not the only layer: each execution runs in a child with the `process`
backend's confinement. These tests look at a child from the outside (its uid, namespaces,
rlimits, root directory) while it holds an execution, check that no process of an
execution outlives its answer, and that killing the owning process with SIGKILL leaves no
restricted process running. Which layers can be on depends on the machine: bubblewrap and
root give all of them (as in CI); elsewhere the backend must say which are off and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import Cell, SandboxLimits, create_sandbox
from sandbox.bubblewrap import sandbox_python
from sandbox.process import LAYER_FILESYSTEM, LAYER_HOOK, LAYER_NPROC, LAYER_PID, LAYER_RLIMITS, ON
from sandbox.restricted import LAYER_LANGUAGE, RestrictedSandbox
from sandbox.runner.confine import LAYER_NETWORK, LAYER_UID, LAYER_WORKDIR

from .host_state import WAIT_S, processes, until
from .tool_handlers import RecordingHandler

ROOT = os.geteuid() == 0
LIMITS = SandboxLimits(timeout_s=60, cpu_s=50, memory_mb=256)
REPO = Path(__file__).resolve().parents[2]
HOLD = "import requests\nrequests.get('https://x.test/')\nprint('answered')\n"
"""A cell that waits inside an API call until the test's handler lets it go."""


def _descendants(root: int) -> set[int]:
    """Live processes below `root`, in the host's view."""
    table = processes()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, p in table.items() if p.ppid in frontier and p.state not in "ZX"} - found
        found |= frontier
    return found


def _is_runner(pid: int) -> bool:
    """Whether `pid` is the runner's interpreter (bwrap's command line names it too, after bwrap)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return argv[0] == sandbox_python()[0].encode() and b"runner" in argv


def _busy_children(server: int) -> set[int]:
    """Supervisors holding an execution: runners forked by the fork server that lead a process group of their own.

    `server` is the host's child: the fork server itself, or bwrap with the server inside. Waiting spares
    stay in the server's group; the code's own process (forked ahead by each spare) is a grandchild.
    """
    table = processes()
    runners = {pid for pid in _descendants(server) | {server} if pid in table and _is_runner(pid)}
    top = {pid for pid in runners if table[pid].ppid not in runners}
    return {pid for pid in runners if table[pid].pgid == pid and table[pid].ppid in top}


def _cell_of(supervisor: int) -> int:
    """The process that runs the code of the execution `supervisor` holds."""
    table = processes()
    [cell] = [pid for pid, p in table.items() if p.ppid == supervisor and p.state not in "ZX" and _is_runner(pid)]
    return cell


def _view(child: int, tmp_path: Path) -> tuple:
    """What the host sees of `child`: status, limits, namespaces (its and ours), host paths it sees, its mounts."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{child}/status").read_text().splitlines())
    limits = Path(f"/proc/{child}/limits").read_text()
    namespaces = {kind: os.readlink(f"/proc/{child}/ns/{kind}") for kind in ("net", "mnt", "pid")}
    ours = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "mnt", "pid")}
    sees_host_tmp = os.path.exists(f"/proc/{child}/root{tmp_path}")
    sees_etc = os.path.exists(f"/proc/{child}/root/etc/passwd")
    mounts = Path(f"/proc/{child}/mountinfo").read_text().splitlines()
    return status, limits, namespaces, ours, sees_host_tmp, sees_etc, mounts


def _start_time(pid: int) -> str | None:
    """Its start time (tells a process from a later one with the same pid); None once gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in "ZX" else fields[19]


@pytest.fixture(params=[True, False], ids=["bubblewrap", "no-bubblewrap"])
async def restricted(request: pytest.FixtureRequest) -> AsyncIterator[RestrictedSandbox]:
    sandbox = create_sandbox("restricted", LIMITS, pool_size=2, bubblewrap=request.param)
    assert isinstance(sandbox, RestrictedSandbox)
    async with sandbox:
        yield sandbox


async def test_every_layer_is_reported_on_or_off_with_a_reason(restricted: RestrictedSandbox) -> None:
    layers = restricted.layers
    assert set(layers) >= {
        LAYER_LANGUAGE, LAYER_FILESYSTEM, LAYER_PID, LAYER_NETWORK, LAYER_UID, LAYER_NPROC, LAYER_WORKDIR, LAYER_RLIMITS,
        LAYER_HOOK,
    }  # fmt: skip
    for name, state in layers.items():
        assert state == ON or (state.startswith("off: ") and len(state) > 6), (name, state)
    assert layers[LAYER_LANGUAGE] == ON and layers[LAYER_RLIMITS] == ON and layers[LAYER_HOOK] == ON
    assert layers[LAYER_NETWORK] == ON
    assert (layers[LAYER_UID] == ON) == ROOT
    if not restricted.use_bubblewrap:
        assert layers[LAYER_FILESYSTEM] == "off: turned off (bubblewrap=False)"
    elif shutil.which("bwrap") and ROOT:
        assert layers[LAYER_FILESYSTEM] == ON and layers[LAYER_PID] == ON


async def test_a_child_holding_an_execution_is_confined(restricted: RestrictedSandbox, tmp_path: Path) -> None:
    handler = RecordingHandler()
    handler.gate = asyncio.Event()
    running = asyncio.create_task(restricted.execute(Cell(code=HOLD), handler))
    try:
        await asyncio.wait_for(handler.entered.wait(), WAIT_S)
        [supervisor] = _busy_children(restricted.server.pid)
        cell = _cell_of(supervisor)
        seen = {child: _view(child, tmp_path) for child in (supervisor, cell)}
    finally:
        handler.gate.set()
        result = await running
    assert result.ok and result.stdout == "answered\n", result.error

    for child, (status, limits, namespaces, ours, sees_host_tmp, sees_etc, mounts) in seen.items():
        assert status["NoNewPrivs"].strip() == "1"
        assert int(status["CapEff"], 16) == 0
        uid = int(status["Uid"].split()[0])
        if ROOT:
            assert restricted.uid_first <= uid < restricted.uid_first + restricted.uid_count
        if child == cell:  # the code's process carries the execution's rlimits; its supervisor is runner code
            limit_of = {line[:26].strip(): line[26:].split() for line in limits.splitlines()[1:]}
            assert limit_of["Max address space"][:2] == [str(LIMITS.memory_mb * 1024 * 1024)] * 2
            assert limit_of["Max cpu time"][0] == str(LIMITS.cpu_s)
        assert namespaces["net"] != ours["net"]
        if restricted.layers[LAYER_FILESYSTEM] == ON:
            assert namespaces["mnt"] != ours["mnt"] and namespaces["pid"] != ours["pid"]
            assert not sees_host_tmp and not sees_etc
            usr = next(line.split() for line in mounts if line.split()[4] == "/usr")
            assert "ro" in usr[5].split(","), usr  # the mount's own options: read-only


async def test_no_process_of_an_execution_outlives_its_answer(restricted: RestrictedSandbox) -> None:
    server = restricted.server.pid
    for code in ("print('one')", "import json\nprint(json.dumps([1]))", "x = 1 / 0"):
        await restricted.execute(Cell(code=code))
        await until(lambda: not _busy_children(server), "the execution's process to be gone after its answer")
    assert restricted.server.pid == server


OWNER = """
import asyncio
from sandbox import Cell, SandboxLimits, ToolResponse, create_sandbox

async def main() -> None:
    sandbox = create_sandbox("restricted", SandboxLimits(timeout_s=600, cpu_s=600), pool_size=2, bubblewrap={bubblewrap})
    await sandbox.start()

    async def handler(request):
        print("running", flush=True)
        return ToolResponse(status=200, body="{{}}")

    spin = "import requests\\nrequests.get('https://x.test/')\\nwhile True:\\n    pass\\n"
    await sandbox.execute(Cell(code=spin), handler)

asyncio.run(main())
"""


@pytest.mark.parametrize("bubblewrap", [True, False], ids=["bubblewrap", "no-bubblewrap"])
async def test_killing_the_owner_with_sigkill_leaves_no_restricted_process(bubblewrap: bool) -> None:
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER.format(bubblewrap=bubblewrap),
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert owner.stdout is not None
        async with asyncio.timeout(WAIT_S * 2):
            while (line := await owner.stdout.readline()) != b"running\n":
                assert line, "the owner ended before its execution started"
        # the server, its spares and the child spinning in its execution (and bwrap, when used)
        started = {pid: _start_time(pid) for pid in _descendants(owner.pid)}
        assert len(started) >= 4, started
        busy = _busy_children(owner.pid)
        assert len(busy) == 1
        os.kill(owner.pid, signal.SIGKILL)
        await owner.wait()
        await until(
            lambda: all(_start_time(pid) != started_at for pid, started_at in started.items()),
            "every process the killed owner started to be gone (the spinning child had 600 s left)",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            owner.kill()
        await owner.wait()
