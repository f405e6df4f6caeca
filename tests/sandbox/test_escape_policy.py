"""One in-sandbox policy on every backend: `dir_fd`-relative names, the pidfd calls, signals to
other processes, and no process of an execution left once it has answered.

Each attempt gets the same verdict everywhere: a failed execution. `restricted` refuses it in
the language; `process` and `docker` refuse it in the audit hook (a `PermissionError`, or an
`AttributeError` for the pidfd calls taken out of the modules), and without the hook the
operating system still does (read-only views, the seccomp filter that lets the code signal
no process but itself, the supervisor that kills what the code started).
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from sandbox import Cell, ExecutionResult, Sandbox

from .escape_variants import RESTRICTED_REFUSALS, assert_still_serving, one_line

pytestmark = pytest.mark.asyncio(loop_scope="module")

TAG = uuid.uuid4().hex[:8]
DROP = f"codetool-drop-{TAG}"
HOST_LIBRARY = os.path.dirname(os.__file__)
LIBRARY_FD = "import os\nfd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\n"
DIR_FD_ATTACKS = {
    "os.open with O_CREAT relative to a directory descriptor": f"os.close(os.open({DROP!r}, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))\n",
    "open() whose opener adds a dir_fd": f"open({DROP!r}, 'w', opener=lambda name, flags: os.open(name, flags, 0o600, dir_fd=fd)).write('x')\n",
    "mkdir relative to a directory descriptor": f"os.mkdir({DROP!r}, dir_fd=fd)\n",
    "rename into a directory descriptor": f"open('mine', 'w').write('x')\nos.rename('mine', {DROP!r}, dst_dir_fd=fd)\n",
    "symlink relative to a directory descriptor": f"os.symlink('/etc/passwd', {DROP!r}, dir_fd=fd)\n",
    "utime relative to a directory descriptor": "os.utime('os.py', dir_fd=fd)\n",
    "chmod of a directory given as a descriptor": "os.chmod(fd, 0o777)\n",
}
PIDFD_ATTACKS = {
    "os.pidfd_open of the parent": "import os\nos.pidfd_open(os.getppid())\n",
    "posix.pidfd_open of pid 1": "import posix\nposix.pidfd_open(1)\n",
    "from os import pidfd_open": "from os import pidfd_open\npidfd_open(1)\n",
    "signal.pidfd_send_signal": "import signal\nsignal.pidfd_send_signal(0, signal.SIGKILL)\n",
    "pidfd_open of a posix module rebuilt from its spec": (
        "import importlib.util, os, signal\n"
        "posix = importlib.util.module_from_spec(importlib.util.find_spec('posix'))\n"
        "fd = posix.pidfd_open(os.getppid())\n"
        "signal.pidfd_send_signal(fd, signal.SIGKILL)\n"
    ),
}
KILL_ATTACKS = {
    "os.kill of the parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
    "os.kill of pid 1": "import os, signal\nos.kill(1, signal.SIGKILL)\n",
    "os.kill of every process": "import os, signal\nos.kill(-1, signal.SIGKILL)\n",
    "os.killpg of the parent's group": "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n",
    "os.kill through a posix module rebuilt from its spec": (
        "import importlib.util, os, signal\n"
        "posix = importlib.util.module_from_spec(importlib.util.find_spec('posix'))\n"
        "posix.kill(os.getppid(), signal.SIGKILL)\n"
    ),
}
POLICY_REFUSALS = {"PermissionError", "AttributeError", "ImportError"}
"""How the audit hook (or the modules it curated) says no on `process` and `docker`."""


def _assert_refused(sandbox: Sandbox, hooked: bool, result: ExecutionResult) -> None:
    assert not result.ok, result.stdout
    assert "escaped" not in result.stdout
    assert one_line(result)
    if sandbox.name == "restricted":
        assert result.error_type in RESTRICTED_REFUSALS, result.error
    elif hooked:
        assert result.error_type in POLICY_REFUSALS, result.error


@pytest.mark.parametrize("attack", sorted(DIR_FD_ATTACKS))
async def test_names_relative_to_a_descriptor_are_checked_where_the_kernel_resolves_them(
    escape_variant: tuple[Sandbox, bool], attack: str
) -> None:
    sandbox, hooked = escape_variant
    result = await sandbox.execute(Cell(code=LIBRARY_FD + DIR_FD_ATTACKS[attack] + "print('escaped')\n"))
    _assert_refused(sandbox, hooked, result)
    if sandbox.name != "restricted" and hooked:
        assert result.error_type == "PermissionError", result.error
    assert not os.path.lexists(os.path.join(HOST_LIBRARY, DROP))
    await assert_still_serving(sandbox)


@pytest.mark.parametrize("attack", sorted(PIDFD_ATTACKS))
async def test_the_pidfd_calls_reach_no_process(escape_variant: tuple[Sandbox, bool], attack: str) -> None:
    sandbox, hooked = escape_variant
    result = await sandbox.execute(Cell(code=PIDFD_ATTACKS[attack] + "print('escaped')\n"))
    _assert_refused(sandbox, hooked, result)
    if sandbox.name != "restricted":  # the seccomp filter answers what the hook cannot see
        assert result.error_type in ({"PermissionError"} if "rebuilt" in attack or not hooked else POLICY_REFUSALS), result.error
    await assert_still_serving(sandbox)


@pytest.mark.parametrize("attack", sorted(KILL_ATTACKS))
async def test_signals_to_other_processes_are_refused(escape_variant: tuple[Sandbox, bool], attack: str) -> None:
    sandbox, hooked = escape_variant
    server = getattr(sandbox, "server", None)
    server_pid = server.pid if server is not None else None
    result = await sandbox.execute(Cell(code=KILL_ATTACKS[attack] + "print('escaped')\n"))
    _assert_refused(sandbox, hooked, result)
    if sandbox.name != "restricted":
        assert result.error_type == "PermissionError", result.error
    await assert_still_serving(sandbox)
    if server is not None:
        assert server.pid == server_pid, "the fork server was killed"


MARK = f"codetool-leftover-{TAG}"
SPAWN = f"""
import os, subprocess, sys, time
argv = [sys.executable, '-c', 'import time; time.sleep(600)  # {MARK}']
subprocess.Popen(argv, start_new_session=True)
if os.fork() == 0:  # a grandchild that leaves the group and whose parent exits at once
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, argv)
    os._exit(0)
if os.fork() == 0:  # a plain child of the code's process
    os.execv(sys.executable, argv)
def running():
    found = 0
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/' + pid + '/cmdline', 'rb') as handle:
                found += b'{MARK}' in handle.read()
        except OSError:
            pass
    return found
while running() < 3:
    time.sleep(0.01)
print('spawned', running())
"""


def _host_processes_with(text: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if text in line and "ps -eo" not in line]


async def test_no_process_of_an_execution_outlives_its_answer(escape_variant: tuple[Sandbox, bool]) -> None:
    sandbox, hooked = escape_variant
    result = await sandbox.execute(Cell(code=SPAWN))
    assert _host_processes_with(MARK) == []  # at once: gone before the answer, not some time after
    if sandbox.name == "restricted":
        assert result.error_type in RESTRICTED_REFUSALS, result.error
    elif hooked:
        assert result.error == "PermissionError: subprocess.Popen is not allowed in the sandbox"
    else:  # they did run: the supervisor killed and reaped every one of them before answering
        assert result.ok and result.stdout == "spawned 3\n", result.error
    await assert_still_serving(sandbox)
