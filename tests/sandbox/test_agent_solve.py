"""`python -m agent solve --sandbox process|docker` end to end, as the README shows it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from sandbox import AUDIT_DB_NAME, AuditStore
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import coppola_policy

from .conftest import open_sandbox_options

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["process", pytest.param("docker", marks=pytest.mark.docker)])
async def test_solve_runs_its_steps_in_the_chosen_sandbox_and_audits_them(backend: str, tmdb_spec: Path, tmp_path: Path) -> None:
    open_sandbox_options(backend, pool_size=1)  # docker: skip or fail here when it cannot run
    config = tmp_path / "agent.yaml"
    config.write_text(f"audit_db: {tmp_path / AUDIT_DB_NAME}\n")
    async with OpenAIStub(coppola_policy) as stub:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "solve", "movies directed by Sofia Coppola", "--toolset", "tmdb",
            "--spec", str(tmdb_spec), "--json", "--n", "1", "--sandbox", backend, "--config", str(config),
            cwd=REPO, env={**os.environ, "OPENAI_BASE_URL": stub.base_url, "OPENAI_API_KEY": "k"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, stderr.decode()[-3000:]
    trajectory = json.loads(stdout)
    assert trajectory["final_answer"].startswith("Sofia Coppola directed")
    assert trajectory["stop_reason"] == "finished"
    with AuditStore(tmp_path / AUDIT_DB_NAME) as store:
        executions = store.executions()
    assert executions and {(e.backend, e.query_id) for e in executions} == {(backend, "adhoc")}
    assert [e.node for e in executions] == ["1-1", "1-1-1", "1-1-1-1"][: len(executions)]
    assert any(call.url.startswith("https://api.themoviedb.org/3/") for e in executions for call in e.api_calls)
