"""`python -m agent run` on bad input, a spent error budget, and a resume with other settings."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runner.scenario import STB_DATA, TMDB_QUERIES, TMDB_SPEC, finish, python_module, write_agent_config

DEAD_ENDPOINT = "http://127.0.0.1:9/v1"


def agent_run(*args: str) -> tuple[int, str, str]:
    return finish(python_module("agent", "run", "--no-progress", *args), timeout=120)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def tmdb_run(out: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    config = write_agent_config(tmp_path)
    return agent_run(
        "--benchmark", "tmdb", "--data", str(TMDB_QUERIES), "--spec", str(TMDB_SPEC), "--out", str(out),
        "--config", str(config), *extra,
    )  # fmt: skip


def test_error_budget_stops_the_run(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = tmdb_run(
        out, tmp_path, "--base-url", DEAD_ENDPOINT, "--limit", "5", "--concurrency", "1", "--max-failures", "1"
    )
    assert code == 3, stderr
    assert "stopped after 2 failed queries" in one_error_line(stderr)
    failures = sorted(path.name for path in (out / "failures").iterdir())
    assert failures == ["q0.json", "q1.json"]
    assert "OPENAI_BASE_URL" in json.loads((out / "failures" / "q0.json").read_text())["error"]
    assert list((out / "trajectories").iterdir()) == []
    data = json.loads((out / "run.json").read_text())
    assert data["status"] == "aborted" and data["summary"]["failed"] == 2


def test_resume_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "run"
    bounds = ["--llm-concurrency", "3", "--prm-concurrency", "2", "--tool-concurrency", "5", "--sandbox-pool", "2"]
    code, _, stderr = tmdb_run(
        out, tmp_path, "--base-url", DEAD_ENDPOINT, "--limit", "1", "--model", "model-a", *bounds
    )
    assert code == 1, stderr  # the one query failed: the endpoint is dead
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["llm"]["max_concurrency"], config["rm"]["max_connections"]) == (3, 2)
    assert (config["gateway"]["concurrency"], config["sandbox"]["options"]["pool_size"]) == (5, 2)
    assert config["audit_db"] == str(out / "audit.sqlite")
    code, _, stderr = tmdb_run(out, tmp_path, "--base-url", DEAD_ENDPOINT, "--limit", "1", "--model", "model-b")
    assert code == 2
    line = one_error_line(stderr)
    assert "other settings" in line and "'model-a'" in line and "--out" in line
    assert json.loads((out / "run.json").read_text())["identity"]["model"] == "model-a"


def test_stabletoolbench_folder_needs_a_known_group(tmp_path):
    code, _, stderr = agent_run("--benchmark", "stabletoolbench", "--data", str(STB_DATA), "--out", str(tmp_path / "r"))
    assert code == 2 and "G1_instruction" in one_error_line(stderr) and "--group" in stderr
    code, _, stderr = agent_run(
        "--benchmark", "stabletoolbench", "--data", str(STB_DATA), "--group", "G9_nothing", "--out", str(tmp_path / "r")
    )
    assert code == 2 and "no group G9_nothing" in one_error_line(stderr)
    assert not (tmp_path / "r").exists(), "a refused run must not leave a run directory behind"


def test_a_missing_tmdb_spec_and_an_unknown_benchmark_are_one_line(tmp_path):
    missing = tmp_path / "no_spec.json"
    code, _, stderr = agent_run(
        "--benchmark", "tmdb", "--data", str(TMDB_QUERIES), "--spec", str(missing), "--out", str(tmp_path / "r")
    )
    assert code == 2 and f"--spec {missing} does not exist" in one_error_line(stderr)
    code, _, stderr = agent_run("--benchmark", "toolbench", "--data", str(TMDB_QUERIES), "--out", str(tmp_path / "r"))
    assert code == 2 and "invalid --benchmark" in one_error_line(stderr)


def test_unknown_query_id_is_one_line(tmp_path):
    code, _, stderr = tmdb_run(tmp_path / "r", tmp_path, "--query-id", "q999")
    assert code == 2 and "q999" in one_error_line(stderr)
