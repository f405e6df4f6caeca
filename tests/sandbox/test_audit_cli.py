"""`python -m agent audit RUN_DIR` as a real subprocess over a real audit database."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from sandbox import AUDIT_DB_NAME, AuditedSandbox, Cell, create_sandbox

from .tool_handlers import RecordingHandler, json_response

REPO = Path(__file__).resolve().parents[2]
API = "https://api.example.test"


async def _audit(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "audit", *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, stdout.decode(), stderr.decode()


@pytest.fixture
async def run_dir(tmp_path: Path) -> Path:
    handler = RecordingHandler(default=json_response({"results": [{"id": 7}]}))
    cells = [
        Cell(code=f"import requests\nprint(requests.get('{API}/search/movie', params={{'query': 'alien'}}).json())", tags={"query_id": "q1", "node": "1"}),
        Cell(code="print('half')\nx = {}['missing']", tags={"query_id": "q1", "node": "1-2"}),
        Cell(code="print('other query')", tags={"query_id": "q2", "node": "1"}),
    ]
    async with AuditedSandbox(create_sandbox("restricted", pool_size=1), tmp_path / AUDIT_DB_NAME, run_id="cli-run") as audited:
        for cell in cells:
            await audited.execute(cell, handler)
    return tmp_path


async def test_lists_every_execution(run_dir: Path) -> None:
    code, stdout, _ = await _audit(str(run_dir))
    assert code == 0
    assert "3 executions" in stdout
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["1", "2", "3"]
    assert "KeyError: 'missing'" in rows[1] and "error" in rows[1]


async def test_filters_and_json(run_dir: Path) -> None:
    code, stdout, _ = await _audit(str(run_dir), "--failed", "--json")
    assert code == 0
    [failed] = json.loads(stdout)
    assert (failed["id"], failed["node"], failed["status"], failed["stdout"]) == (2, "1-2", "error", "half\n")
    _, stdout, _ = await _audit(str(run_dir), "--api", "/search/movie", "--json")
    assert [r["id"] for r in json.loads(stdout)] == [1]
    _, stdout, _ = await _audit(str(run_dir / AUDIT_DB_NAME), "--query", "q2", "--json")
    assert [(r["query_id"], r["run_id"]) for r in json.loads(stdout)] == [("q2", "cli-run")]
    _, stdout, _ = await _audit(str(run_dir), "--node", "1", "--query", "q1", "--json")
    assert [r["node"] for r in json.loads(stdout)] == ["1", "1-2"]


async def test_shows_one_execution_in_full(run_dir: Path) -> None:
    code, stdout, _ = await _audit(str(run_dir), "1")
    assert code == 0
    assert "execution 1" in stdout and "query q1" in stdout and "status ok" in stdout
    assert "requests.get(" in stdout  # the code
    assert f"{API}/search/movie" in stdout and '{"query": "alien"}' in stdout  # the API call
    code, stdout, _ = await _audit(str(run_dir), "2", "--json")
    record = json.loads(stdout)
    assert record["error"] == "KeyError: 'missing'" and "x = {}['missing']" in record["traceback"]


async def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, run_dir: Path) -> None:
    code, stdout, stderr = await _audit(str(tmp_path / "nowhere"))
    assert code == 2 and stdout == ""
    assert stderr.strip().startswith("error:") and "no audit log here" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = await _audit(str(run_dir), "99")
    assert code == 2 and "no execution with id 99" in stderr
