"""`python -m agent solve` as a real subprocess against the stand-in server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.support.openai_stub import OpenAIStub
from tests.support.policies import coppola_policy

REPO = Path(__file__).resolve().parents[2]


async def _agent(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", *args,
        cwd=REPO, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()


async def test_solve_from_query_file_writes_trajectory(tmp_path, tmdb_spec, tmdb_queries):
    out_file = tmp_path / "q0.json"
    async with OpenAIStub(coppola_policy) as stub:
        code, stdout, stderr = await _agent(
            "solve", "--toolset", "tmdb", "--spec", str(tmdb_spec),
            "--query-file", str(tmdb_queries), "--query-id", "q0",
            "--base-url", stub.base_url, "--model", "stub-model", "--n", "1", "--out", str(out_file),
        )
    assert code == 0, stderr
    assert "final answer" in stdout and "Sofia Coppola directed" in stdout
    saved = json.loads(out_file.read_text())
    assert saved["q_id"] == "q0" and saved["stop_reason"] == "finished"
    assert {"q_id", "query", "instruction", "infer_path", "exec_res", "nodes", "chosen_path"} <= saved.keys()
    assert [entry["path_name"] for entry in saved["infer_path"]] == ["1-1", "1-1-1", "1-1-1-1"]


async def test_solve_json_prints_the_trajectory(tmdb_spec):
    async with OpenAIStub(coppola_policy) as stub:
        code, stdout, stderr = await _agent(
            "solve", "movies directed by Sofia Coppola", "--toolset", "tmdb", "--spec", str(tmdb_spec),
            "--json", "--n", "1", env={"OPENAI_BASE_URL": stub.base_url, "OPENAI_API_KEY": "k"},
        )
    assert code == 0, stderr
    trajectory = json.loads(stdout)
    assert trajectory["q_id"] == "adhoc" and trajectory["final_answer"].startswith("Sofia Coppola directed")


async def test_solve_needs_no_spec_and_says_when_answers_were_simulated(tmp_path):
    out_file = tmp_path / "t.json"
    env = {key: value for key, value in os.environ.items() if key != "TMDB_API_TOKEN"}
    async with OpenAIStub(coppola_policy) as stub:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "solve", "movies directed by Sofia Coppola",  # tmdb is the default
            "--base-url", stub.base_url, "--model", "stub-model", "--n", "1", "--out", str(out_file),
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    assert "API answers were simulated" in out.decode() and "may rest on made-up data" in out.decode()
    saved = json.loads(out_file.read_text())
    calls = [call for node in saved["nodes"] for call in node["api_calls"]]
    assert calls and all(call["simulated"] for call in calls)
    assert saved["simulated_api_calls"] == len(calls)


async def test_unreachable_endpoint_is_one_line_and_exit_1(tmdb_spec):
    code, stdout, stderr = await _agent(
        "solve", "anything", "--toolset", "tmdb", "--spec", str(tmdb_spec), "--base-url", "http://127.0.0.1:9/v1",
        "--llm-retries", "1",
    )
    assert code == 1
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "OPENAI_BASE_URL" in lines[0], stderr


async def test_usage_error_exit_2():
    code, _, stderr = await _agent("solve")
    assert code == 2 and "QUERY" in stderr


async def test_solve_with_every_mode_against_rm_serve(tiny_lm_dir, tmdb_spec, tmp_path):
    from tests.rm.helpers import rm_server_process

    # The tiny tokenizer splits the 20 TMDB API docs into many tokens; the model has no real context limit.
    async with rm_server_process("--model", str(tiny_lm_dir), "--port", "0", "--max-prompt-tokens", "40000") as (_, rm_url):
        async with OpenAIStub(coppola_policy) as stub:
            for mode in ("codetool", "no-latent", "no-spot", "beam"):
                out_file = tmp_path / f"{mode}.json"
                code, _, stderr = await _agent(
                    "solve", "movies directed by Sofia Coppola", "--toolset", "tmdb", "--spec", str(tmdb_spec),
                    "--base-url", stub.base_url, "--rm-url", rm_url, "--mode", mode, "--out", str(out_file),
                )
                assert code == 0, f"{mode}: {stderr}"
                saved = json.loads(out_file.read_text())
                assert saved["mode"] == mode and saved["stop_reason"] == "finished"
                has_latent = [node["r_lat"] is not None for node in saved["nodes"]]
                assert all(has_latent) if mode != "no-latent" else not any(has_latent), mode


async def test_a_missing_openapi_spec_is_one_line_and_exit_2(tmp_path):
    code, _, stderr = await _agent("solve", "anything", "--openapi", str(tmp_path / "nowhere.yaml"))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--openapi" in lines[0] and "nowhere.yaml" in lines[0], stderr
