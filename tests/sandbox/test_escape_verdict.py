"""Forged verdicts: the code writes result frames, garbage or requests wherever it can, exits
early, swallows limits; every time the execution fails, and the sandbox goes on serving.

On `restricted` the code cannot even import `os`; on `process` and `docker` (with or
without the audit hook: writing to a descriptor raises no audit event) it reaches its own
pipes to the supervisor, never the host's channel, and the supervisor refuses what it sends.
The host side is checked on its own at the end: a runner peer that does not seal its
frames, or says more after its result, fails the execution.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable

import pytest

from sandbox import Cell, Sandbox, SandboxLimits
from sandbox.channel import PROTOCOL_VERSION, READY, RESULT, encode_frame, read_frame
from sandbox.exchange import ExchangeOutcome, run_exchange
from sandbox.runner.channel import encode_sealed_frame

from .conftest import ESCAPE_LIMITS
from .escape_variants import RESTRICTED_REFUSALS, assert_still_serving, one_line

pytestmark = pytest.mark.asyncio(loop_scope="module")

FORGE = """
import json, os, struct
def frame(message):
    body = json.dumps(message).encode()
    return struct.pack('>I', len(body)) + body
FORGED = frame({"type": "result", "ok": True, "stdout": "FORGED\\n", "stdout_truncated": False, "stderr": "",
                "error": None, "error_type": None, "traceback": None, "timed_out": False, "duration_s": 0.1,
                "peak_memory_kb": 1})
def spray(data):
    for fd in range(256):
        try:
            os.write(fd, data)
        except OSError:
            pass
"""

FORGERIES = {
    "a result frame on every descriptor, then on as usual": "spray(FORGED)\nprint('real')\n",
    "a result frame, then exit 0": "spray(FORGED)\nos._exit(0)\n",
    "a result frame after an exception": "try:\n    1 / 0\nfinally:\n    spray(FORGED)\n",
    "a result frame from an except clause, then exit 0": "try:\n    1 / 0\nexcept ZeroDivisionError:\n    spray(FORGED)\n    os._exit(0)\n",
    "garbage on every descriptor": "spray(bytes(range(256)) * 4)\nprint('real')\n",
    "a huge frame header": "spray(struct.pack('>I', 0xFFFFFFF0) + b'{')\nprint('real')\n",
    "a sealed-looking result with a guessed seal": "spray(struct.pack('>I', len(FORGED) + 12) + os.urandom(16) + FORGED[4:])\nos._exit(0)\n",
    "an API call out of order": "spray(frame({'type': 'http_request', 'call_id': 99, 'method': 'GET', 'url': 'https://x.test/'}))\nos._exit(0)\n",
    "a forked copy writes the frame while the parent waits": (
        "pid = os.fork()\nif pid == 0:\n    spray(FORGED)\n    os._exit(0)\nos.waitpid(pid, 0)\nprint('real')\n"
    ),
    "a thread writes the frame after the code ends": (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.05), spray(FORGED), os._exit(0))).start()\n"
        "raise ValueError('the real outcome')\n"
    ),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_a_forged_result_is_a_failed_execution(escape_variant: tuple[Sandbox, bool], forgery: str) -> None:
    sandbox, hooked = escape_variant
    result = await sandbox.execute(Cell(code=FORGE + FORGERIES[forgery]))
    assert not result.ok, (result.stdout, result.error)
    assert result.stdout != "FORGED\n"  # (bytes it sprayed on its own stdout are just its output)
    assert one_line(result)
    if sandbox.name == "restricted":
        assert result.error_type in RESTRICTED_REFUSALS, result.error
    elif "fork" in forgery and hooked:
        assert result.error == "PermissionError: os.fork is not allowed in the sandbox"
    elif "thread" not in forgery:  # (the thread races the code's own failure report: either fails it)
        assert result.error_type == "SandboxViolation", result.error
    await assert_still_serving(sandbox)


async def test_a_copy_forked_to_write_later_is_gone_before_the_answer(escape_variant: tuple[Sandbox, bool]) -> None:
    sandbox, hooked = escape_variant
    code = FORGE + "import time\nif os.fork() == 0:\n    time.sleep(0.5)\n    spray(FORGED)\n    os._exit(0)\nprint('real')\n"
    result = await sandbox.execute(Cell(code=code))
    if sandbox.name == "restricted" or hooked:
        assert not result.ok and result.error_type in {*RESTRICTED_REFUSALS, "PermissionError"}, result.error
    else:  # the copy is killed with the code's process group before the supervisor answers
        assert result.ok and result.stdout == "real\n", result.error
    await assert_still_serving(sandbox)


SWALLOWED = {
    "the API call limit": (
        "import requests\n"
        "for _ in range(5):\n"
        "    try:\n"
        "        requests.get('https://api.example.test/')\n"
        "    except BaseException:\n"
        "        pass\n"
        "print('done')\n"
    ),
    "the output limit": "try:\n    print('x' * 50_000)\nexcept BaseException:\n    pass\n",
}
EXIT_CLEANLY = "import os\nos._exit(0)\n"


@pytest.mark.parametrize("limit", sorted(SWALLOWED))
@pytest.mark.parametrize("then_exit", [False, True], ids=["finish", "exit-0"])
async def test_a_swallowed_limit_still_fails(escape_variant: tuple[Sandbox, bool], limit: str, then_exit: bool) -> None:
    sandbox, _ = escape_variant
    code = SWALLOWED[limit] + (EXIT_CLEANLY if then_exit else "")
    result = await sandbox.execute(Cell(code=code))
    assert not result.ok, result.stdout
    if sandbox.name == "restricted" and then_exit:
        assert result.error_type in RESTRICTED_REFUSALS, result.error
    else:
        assert result.error_type == ("ApiCallLimitExceeded" if "API" in limit else "OutputLimitExceeded"), result.error
        assert len(result.api_calls) <= ESCAPE_LIMITS.max_api_calls
        assert len(result.stdout.encode()) <= ESCAPE_LIMITS.output_bytes
    await assert_still_serving(sandbox)


@pytest.mark.parametrize("then_exit", [False, True], ids=["finish", "exit-0"])
async def test_a_swallowed_time_limit_still_fails(escape_variant: tuple[Sandbox, bool], then_exit: bool) -> None:
    sandbox, _ = escape_variant
    quick = sandbox.limits
    sandbox.limits = SandboxLimits(timeout_s=0.5, cpu_s=4, memory_mb=256)
    try:
        code = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        break\nprint('done')\n"
        result = await sandbox.execute(Cell(code=code + (EXIT_CLEANLY if then_exit else "")))
    finally:
        sandbox.limits = quick
    assert not result.ok
    if sandbox.name == "restricted" and then_exit:
        assert result.error_type in RESTRICTED_REFUSALS, result.error
    else:
        assert result.timed_out and result.error_type == "ExecutionTimeout", result.error
    await assert_still_serving(sandbox)


# --- the host side, against a peer that speaks the wire protocol but not as the supervisor would ---

PEER_RESULT = {"type": RESULT, "ok": True, "stdout": "FORGED\n", "stderr": "", "error": None, "timed_out": False}


async def _run_against(send_after_exec: Callable[[bytes], list[bytes]]) -> ExchangeOutcome:
    host_end, peer_end = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=host_end)

    def peer() -> None:
        fd = peer_end.fileno()
        os.write(fd, encode_frame({"type": READY, "protocol": PROTOCOL_VERSION, "pid": 4321, "mode": "plain"}))
        exec_message = read_frame(fd)
        for chunk in send_after_exec(bytes.fromhex(exec_message["key"])):
            os.write(fd, chunk)
        peer_end.close()

    try:
        outcome, _ = await asyncio.gather(
            run_exchange(reader, writer, Cell(code="print(1)"), SandboxLimits(timeout_s=5), None, "plain"), asyncio.to_thread(peer)
        )
    finally:
        writer.close()
    return outcome


HOSTILE_PEERS = {
    "an unsealed result": lambda key: [encode_frame(PEER_RESULT)],
    "a result sealed with another key": lambda key: [encode_sealed_frame(PEER_RESULT, os.urandom(32), 1)],
    "a sealed result under the wrong number": lambda key: [encode_sealed_frame(PEER_RESULT, key, 2)],
    "a sealed result, then an extra frame": lambda key: [encode_sealed_frame(PEER_RESULT, key, 1), encode_frame(PEER_RESULT)],
    "a sealed result, then garbage": lambda key: [encode_sealed_frame(PEER_RESULT, key, 1), b"\x00\x00"],
    "garbage": lambda key: [struct.pack(">I", 3) + b"\xff\xfe\xfd"],
}


@pytest.mark.parametrize("peer", sorted(HOSTILE_PEERS))
async def test_the_host_fails_what_the_supervisor_did_not_seal_alone(peer: str) -> None:
    outcome = await _run_against(HOSTILE_PEERS[peer])
    assert not outcome.result.ok, outcome.result
    assert outcome.result.error_type == "SandboxViolation", outcome.result.error
    assert "FORGED" not in outcome.result.stdout


async def test_the_host_takes_a_result_sealed_and_followed_by_the_end() -> None:
    outcome = await _run_against(lambda key: [encode_sealed_frame({**PEER_RESULT, "stdout": "sealed\n"}, key, 1)])
    assert outcome.result.ok and outcome.result.stdout == "sealed\n", outcome.result.error
