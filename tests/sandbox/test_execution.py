"""Behaviour every sandbox backend shares: output, replay, errors, limits, isolation."""

from __future__ import annotations

import asyncio

import pytest

from codetool_kernel.errors import SandboxError
from sandbox import Cell, Sandbox

from .conftest import MakeSandbox


async def test_stdout_is_captured(sandbox: Sandbox, backend: str) -> None:
    result = await sandbox.execute(Cell(code="for i in range(3):\n    print('line', i)\n"))
    assert result.ok, result.error
    assert result.stdout == "line 0\nline 1\nline 2\n"
    assert result.error is None and result.traceback is None
    assert result.backend == backend
    assert result.duration_s > 0
    assert result.peak_memory_kb is None or result.peak_memory_kb > 0


async def test_replay_output_is_discarded_but_its_variables_are_kept(sandbox: Sandbox) -> None:
    cell = Cell(
        replay=("data = {'results': [1, 2, 3]}\nprint('step one output')", "total = sum(data['results'])\nprint('two')"),
        code="print('total is', total)",
    )
    result = await sandbox.execute(cell)
    assert result.ok, result.error
    assert result.stdout == "total is 6\n"


async def test_replay_failure_names_the_step(sandbox: Sandbox) -> None:
    cell = Cell(replay=("x = 1", "y = {}['missing']"), code="print('never')")
    result = await sandbox.execute(cell)
    assert not result.ok
    assert result.error == "KeyError: 'missing' (while replaying step 2)"
    assert result.error_type == "KeyError"
    assert result.stdout == ""
    assert "<replay step 2>" in result.traceback


async def test_exception_gives_one_line_error_and_keeps_earlier_output(sandbox: Sandbox) -> None:
    code = "print('before')\nresponse = {'page': 1}\nitems = response['results']\nprint('after')\n"
    result = await sandbox.execute(Cell(code=code))
    assert not result.ok
    assert result.stdout == "before\n"
    assert result.error == "KeyError: 'results'"
    assert result.error_type == "KeyError"
    assert "\n" not in result.error
    assert 'File "<cell>", line 3' in result.traceback
    assert "items = response['results']" in result.traceback
    assert "runner" not in result.traceback  # only the user's frames


async def test_exception_inside_a_function_shows_the_user_frames(sandbox: Sandbox) -> None:
    code = "def parse(text):\n    return int(text)\n\nvalue = parse('abc')\n"
    result = await sandbox.execute(Cell(code=code))
    assert result.error_type == "ValueError"
    assert result.error.startswith("ValueError: invalid literal for int()")
    assert 'line 4, in <module>' in result.traceback and 'line 2, in parse' in result.traceback


async def test_syntax_error_reports_the_line(sandbox: Sandbox) -> None:
    result = await sandbox.execute(Cell(code="x = 1\nprint('a'\ny = 2\n"))
    assert not result.ok
    assert result.error_type == "SyntaxError"
    assert "(line 2)" in result.error
    assert result.stdout == ""


async def test_a_preset_that_is_not_json_is_refused_on_the_host(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="not valid JSON"):
        await sandbox.execute(Cell(code="print(1)", preset={"when": object()}))
    assert (await sandbox.execute(Cell(code="print(2)"))).stdout == "2\n"


async def test_preset_globals_are_visible(sandbox: Sandbox) -> None:
    cell = Cell(code="print(headers['Authorization'], limit + 1)", preset={"headers": {"Authorization": "Bearer <MASK>"}, "limit": 4})
    result = await sandbox.execute(cell)
    assert result.ok, result.error
    assert result.stdout == "Bearer <MASK> 5\n"


async def test_state_does_not_leak_between_executions(sandbox: Sandbox) -> None:
    preset = {"headers": {"Accept": "json"}}
    first = await sandbox.execute(Cell(code="secret_value = 41\nheaders['Injected'] = 'yes'\nprint(len(headers))", preset=preset))
    assert first.stdout == "2\n"
    second = await sandbox.execute(
        Cell(code="try:\n    print(secret_value)\nexcept NameError:\n    print('fresh')\nprint(sorted(headers))", preset=preset)
    )
    assert second.ok, second.error
    assert second.stdout == "fresh\n['Accept']\n"


async def test_timeout_ends_as_failed_and_the_pool_serves_the_next(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(pool_size=1, timeout_s=1.0)
    result = await sandbox.execute(Cell(code="print('started')\nwhile True:\n    pass\n"))
    assert not result.ok
    assert result.timed_out
    assert result.stdout == "started\n"
    assert "time limit" in result.error
    after = await sandbox.execute(Cell(code="print('still serving')"))
    assert after.ok and after.stdout == "still serving\n"


async def test_a_swallowed_timeout_still_ends_the_execution(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(pool_size=1, timeout_s=0.5)
    code = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
    result = await sandbox.execute(Cell(code=code))
    assert not result.ok and result.timed_out
    assert (await sandbox.execute(Cell(code="print(1)"))).stdout == "1\n"


async def test_cpu_limit_ends_as_timed_out(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(timeout_s=20, cpu_s=1)
    result = await sandbox.execute(Cell(code="n = 0\nwhile True:\n    n += 1\n"))
    assert not result.ok and result.timed_out
    assert "CPU" in result.error


async def test_memory_bomb_fails_cleanly(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(pool_size=1, memory_mb=256)
    at_once = await sandbox.execute(Cell(code="print('ok so far')\nblob = 'x' * (4 * 1024 ** 3)\n"))
    assert not at_once.ok
    assert at_once.stdout == "ok so far\n"
    assert "memory" in at_once.error.lower()
    gradual = await sandbox.execute(Cell(code="chunks = []\nwhile True:\n    chunks.append('y' * 10_000_000)\n"))
    assert not gradual.ok
    assert "memory" in gradual.error.lower()
    assert (await sandbox.execute(Cell(code="print('alive')"))).stdout == "alive\n"


async def test_output_bomb_is_capped(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(output_bytes=1000)
    result = await sandbox.execute(Cell(code="while True:\n    print('y' * 99)\n"))
    assert not result.ok
    assert result.stdout_truncated
    assert 900 <= len(result.stdout.encode()) <= 1000
    assert result.error_type == "OutputLimitExceeded"
    assert "1000" in result.error


async def test_output_under_the_cap_is_not_truncated(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(output_bytes=1000)
    result = await sandbox.execute(Cell(code="print('é' * 400)"))
    assert result.ok and not result.stdout_truncated
    assert result.stdout == "é" * 400 + "\n"


async def test_recursion_bomb_gives_a_short_traceback(sandbox: Sandbox) -> None:
    result = await sandbox.execute(Cell(code="def dive(n):\n    return dive(n + 1)\n\ndive(0)\n"))
    assert not result.ok
    assert result.error_type == "RecursionError"
    assert len(result.traceback.splitlines()) < 30
    assert "repeated" in result.traceback


async def test_concurrent_executions_are_all_correct(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(pool_size=2)
    cells = [Cell(code="total = 0\nfor i in range(n):\n    total += i\nprint(n, total)", preset={"n": n}) for n in range(10, 16)]
    results = await asyncio.gather(*(sandbox.execute(cell) for cell in cells))
    assert [r.stdout for r in results] == [f"{n} {sum(range(n))}\n" for n in range(10, 16)]


async def test_host_secrets_are_not_visible_to_the_code(make_sandbox: MakeSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-host-secret-0042")
    monkeypatch.setenv("TMDB_API_TOKEN", "tmdb-test-host-secret-0042")
    sandbox = await make_sandbox()
    code = (
        "try:\n"
        "    import os\n"
        "    print(sorted(os.environ.items()))\n"
        "except ImportError as exc:\n"
        "    print('no os:', exc)\n"
    )
    result = await sandbox.execute(Cell(code=code))
    assert "host-secret-0042" not in result.stdout
    assert result.stdout.strip()
