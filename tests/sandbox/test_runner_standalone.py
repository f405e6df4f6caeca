"""The runner directory works on its own: copied elsewhere, one execution on stdin/stdout."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from sandbox import Cell, SandboxLimits
from sandbox.exchange import run_exchange
from sandbox.forkserver import RUNNER_PACKAGE, scrubbed_environment

from .tool_handlers import RecordingHandler, json_response

# -E -s: no environment variables, no user site; -S (plain mode) no site-packages at all,
# so only the standard library and the copied directory can be imported.
PYTHON_FLAGS = {"plain": ["-E", "-s", "-S"], "restricted": ["-E", "-s"]}


@pytest.mark.parametrize("mode", ["plain", "restricted"])
async def test_a_copied_runner_serves_one_execution_on_stdin_stdout(tmp_path: Path, mode: str) -> None:
    shutil.copytree(RUNNER_PACKAGE, tmp_path / "runner", ignore=shutil.ignore_patterns("__pycache__"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, *PYTHON_FLAGS[mode], "-m", "runner", "--mode", mode,
        cwd=tmp_path, env=scrubbed_environment(str(tmp_path)),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    handler = RecordingHandler(default=json_response({"results": [{"name": "Ridley Scott"}]}))
    code = (
        "import json, requests\n"
        "r = requests.get('https://api.example.test/person', params={'q': 'scott'})\n"
        "print(json.dumps(r.json()['results'][0]), greeting)\n"
    )
    pids: list[int] = []
    outcome = await run_exchange(
        process.stdout, process.stdin, Cell(code=code, preset={"greeting": "hi"}), SandboxLimits(timeout_s=10), handler, mode, pids.append
    )
    assert await asyncio.wait_for(process.wait(), 10) == 0
    assert outcome.finished
    assert outcome.result.ok, outcome.result.error
    assert outcome.result.stdout == '{"name": "Ridley Scott"} hi\n'
    assert pids == [process.pid]
    assert [r.params for r in handler.requests] == [{"q": "scott"}]
