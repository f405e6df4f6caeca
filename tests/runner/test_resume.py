"""The scripted StableToolBench run: interrupted with SIGINT mid-run, a file corrupted, resumed."""

from __future__ import annotations

import json

from agent.runner import load_trajectory
from sandbox.audit import AuditFilter, AuditStore
from tests.runner.scenario import BLOCKING_QUERY, FAILING_QUERY, MODEL, STB_GROUP, Sessions

FIRST_SIX = ["588", "608", "1073", "1572", "1856", "2121"]


def manifest(path) -> dict:
    return json.loads((path / "run.json").read_text())


def test_sigint_leaves_only_complete_files(scripted_runs: Sessions):
    code, _, stderr = scripted_runs.interrupted
    assert code == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: ") and "run the same command again" in stderr
    files = scripted_runs.files_after_interrupt
    assert f"{BLOCKING_QUERY}.json" not in files
    for name, text in files.items():
        assert json.loads(text)["q_id"] == int(name.removesuffix(".json")), "StableToolBench's int query_id"
    # Queries are taken in file order by two workers: when the blocking query was asked for,
    # the six before it had been taken and at most one of them was still in flight.
    assert len([q for q in FIRST_SIX if f"{q}.json" in files]) >= 5
    assert manifest(scripted_runs.stb)["sessions"][0]["status"] == "interrupted"


def test_resume_skips_finished_queries_and_redoes_the_rest(scripted_runs: Sessions):
    code, _, stderr = scripted_runs.resumed
    assert code == 1, stderr  # the scripted failing query fails again: the run ends, exit 1 says so
    assert f"1 of 10 queries failed; their records are in {scripted_runs.stb / 'failures'}" in stderr
    finished_before = {name.removesuffix(".json") for name in scripted_runs.files_after_interrupt}
    asked = set(scripted_runs.resumed_requests)
    assert asked & finished_before == {scripted_runs.corrupted}
    assert asked == (set(FIRST_SIX) | {BLOCKING_QUERY, FAILING_QUERY, "2354", "2399"}) - finished_before | {"608"}
    warnings = [line for line in stderr.splitlines() if "redone" in line]
    assert len(warnings) == 1 and "608.json" in warnings[0] and "not valid JSON" in warnings[0]


def test_each_finished_query_has_one_trajectory_written_once(scripted_runs: Sessions):
    run = scripted_runs.stb
    names = sorted(path.name for path in (run / "trajectories").iterdir())
    expected = ["1073", "1572", "1856", "2121", "2144", "2354", "2399", "588", "608"]
    assert names == sorted(f"{q}.json" for q in expected)
    for name, text in scripted_runs.files_after_interrupt.items():
        if name != "608.json":
            assert (run / "trajectories" / name).read_text() == text, f"{name} was rewritten on resume"
    for name in names:
        assert load_trajectory(run / "trajectories" / name).query_id == name.removesuffix(".json")
    written = {path.relative_to(run).as_posix() for path in run.rglob("*") if path.is_file()}
    other = {item for item in written if not item.startswith(("trajectories/", "eval/"))}
    assert other <= {
        "run.json",
        f"failures/{FAILING_QUERY}.json",
        "audit.sqlite",
        "audit.sqlite-wal",
        "audit.sqlite-shm",
    }


def test_a_failing_query_is_recorded_and_the_run_goes_on(scripted_runs: Sessions):
    failure = json.loads((scripted_runs.stb / "failures" / f"{FAILING_QUERY}.json").read_text())
    assert failure["query_id"] == FAILING_QUERY and "HTTP 500" in failure["error"]
    data = manifest(scripted_runs.stb)
    assert data["status"] == "completed" and len(data["sessions"]) == 2
    summary = data["summary"]
    assert (summary["queries"], summary["finished"], summary["failed"], summary["answered"]) == (10, 9, 1, 6)
    assert summary["steps"] == 18
    assert abs(summary["exec_success"] - 27 / 34) < 1e-9


def test_manifest_holds_the_configuration(scripted_runs: Sessions):
    text = (scripted_runs.stb / "run.json").read_text()
    data = json.loads(text)
    assert "api_key" not in text
    assert data["config"]["llm"]["model"] == MODEL and data["config"]["search"]["max_depth"] == 3
    assert data["identity"]["filtered"] is True and data["groups"] == [STB_GROUP]
    assert data["seeds"] == {"search": 0} and data["endpoints"] == [data["config"]["llm"]["base_url"]]
    assert {"python", "codetool", "openai"} <= data["versions"].keys()
    assert [q["query_id"] for q in data["queries"]][:3] == ["588", "608", "1073"] and len(data["queries"]) == 10


def test_tokens_and_cost_from_the_price_table(scripted_runs: Sessions):
    code, _, stderr = scripted_runs.tmdb_run
    assert code == 0, stderr
    summary = manifest(scripted_runs.tmdb)["summary"]
    trajectories = [load_trajectory(path) for path in (scripted_runs.tmdb / "trajectories").iterdir()]
    prompt = sum(t.usage["prompt_tokens"] for t in trajectories)
    completion = sum(t.usage["completion_tokens"] for t in trajectories)
    assert summary["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    price = scripted_runs.prices[MODEL]
    assert abs(summary["cost"] - (prompt * price["prompt"] + completion * price["completion"]) / 1e6) < 1e-12
    assert "cost" in stderr


def test_executions_are_audited_in_the_run_directory(scripted_runs: Sessions):
    store = AuditStore(scripted_runs.stb / "audit.sqlite")
    try:
        messi = store.executions(AuditFilter(query_id="588"))
    finally:
        store.close()
    run_id = manifest(scripted_runs.stb)["run_id"]
    assert len(messi) == 6 and {record.run_id for record in messi} == {run_id}
    assert sorted(record.node for record in messi) == ["1-1", "1-1-1", "1-1-1-1", "1-1-1-2", "1-1-2", "1-2"]
