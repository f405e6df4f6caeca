"""`agent run` against faulty servers on loopback: one writer, exact budgets, clean stops, repairs, exit codes."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.runner.scenario import TMDB_QUERIES, TMDB_SPEC, write_agent_config
from tests.support.cli import assert_no_traceback, error_lines, finish, run, start, strict_json
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import step, step_of


def run_args(base_url: str, out: Path, config: Path, *extra: str) -> list[str]:
    return ["run", "--benchmark", "tmdb", "--data", str(TMDB_QUERIES), "--spec", str(TMDB_SPEC), "--out", str(out),
            "--base-url", base_url, "--model", "stub-model", "--config", str(config), "--n", "1", "--max-depth", "2",
            "--no-progress", *extra]  # fmt: skip


class TwoSteps:
    """Every query: step 1 prints, step 2 answers; step 2 waits while `hold` is set (the test acts meanwhile)."""

    def __init__(self, *, hold: bool = False) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, body: dict[str, Any]) -> list[str]:
        if step_of(body) == 1:
            return [step(1, "Look", "print('looked')")]
        self.reached.set()
        self.release.wait(60)
        return [step(2, "Answer", "print('the answer')", finished=True)]


def _stat(pid: str) -> tuple[int, str, str] | None:
    """(parent pid, state, start ticks) of a live process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> set[tuple[int, str]]:
    """Every live process below `root`, as (pid, start ticks)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(entry.name)) is not None and stat[1] != "Z":
            children.setdefault(stat[0], []).append((int(entry.name), stat[2]))
    found: set[tuple[int, str]] = set()
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.add(child)
            frontier.append(child[0])
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    return {(pid, ticks) for pid, ticks in processes if (stat := _stat(str(pid))) and stat[2] == ticks and stat[1] != "Z"}


def manifest(out: Path) -> dict[str, Any]:
    return strict_json(out / "run.json")


async def test_a_second_run_on_the_same_directory_is_refused_naming_the_holder(tmp_path):
    out, config, policy = tmp_path / "run", write_agent_config(tmp_path), TwoSteps(hold=True)
    async with OpenAIStub(policy) as stub:
        first = await start("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
        try:
            assert await asyncio.to_thread(policy.reached.wait, 60)
            before = len(stub.requests)
            code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
            assert code == 2, stderr
            (line,) = error_lines(stderr)
            assert f"{out} is in use by agent run (pid {first.pid} on {socket.gethostname()} since " in line
            assert len(stub.requests) == before, "the refused run asked the LLM"
        finally:
            policy.release.set()
        code, _, stderr = await finish(first)
    assert code == 0, stderr
    assert len(manifest(out)["sessions"]) == 1
    assert not (out / ".lock").exists()


async def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    out, config, policy = tmp_path / "run", write_agent_config(tmp_path), TwoSteps(hold=True)
    async with OpenAIStub(policy) as stub:
        first = await start("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
        try:
            assert await asyncio.to_thread(policy.reached.wait, 60)
            first.kill()
            await finish(first)
        finally:
            policy.release.set()
        assert json.loads((out / ".lock").read_text())["pid"] == first.pid
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
    assert code == 0, stderr
    assert "took over the lock" in stderr and str(first.pid) in stderr
    assert [session["status"] for session in manifest(out)["sessions"]] == ["killed", "completed"]


async def test_a_run_whose_every_query_fails_exits_1_naming_the_records(tmp_path):
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    async with OpenAIStub(TwoSteps()) as stub:
        stub.fail_next(500, count=1000)
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "3"))
    assert code == 1, stderr
    (line,) = error_lines(stderr)
    assert f"3 of 3 queries failed; their records are in {out / 'failures'}" in line
    assert sorted(path.name for path in (out / "failures").iterdir()) == ["q0.json", "q1.json", "q2.json"]
    assert "HTTP 500" in strict_json(out / "failures" / "q0.json")["error"]
    assert manifest(out)["status"] == "completed" and manifest(out)["summary"]["failed"] == 3


async def test_a_malformed_llm_answer_in_a_run_names_the_endpoint_and_the_fault(tmp_path):
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    async with OpenAIStub(TwoSteps()) as stub:
        stub.malformed_next("no-choices", count=1000)
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
    assert code == 1, stderr
    assert_no_traceback(stderr)
    error = strict_json(out / "failures" / "q0.json")["error"]
    assert f"LLM endpoint {stub.base_url} answered JSON without `choices`" in error


async def test_paths_are_checked_before_any_work(tmp_path):
    config, a_file = write_agent_config(tmp_path), tmp_path / "a-file"
    a_file.write_text("x")
    async with OpenAIStub(TwoSteps()) as stub:
        code, _, stderr = await run("agent", *run_args(stub.base_url, a_file, config, "--limit", "1"))
        assert code == 2 and "--out" in error_lines(stderr)[0] and "is a file" in error_lines(stderr)[0], stderr
        code, _, stderr = await run(
            "agent", *run_args(stub.base_url, tmp_path / "run", config, "--limit", "1", "--prices", str(tmp_path / "none"))
        )
        assert code == 2 and "price table" in error_lines(stderr)[0], stderr
        assert stub.requests == []
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
async def test_a_stopped_run_records_the_session_as_interrupted_and_says_how_to_resume(tmp_path, signum, expected):
    out, config, policy = tmp_path / "run", write_agent_config(tmp_path), TwoSteps(hold=True)
    async with OpenAIStub(policy) as stub:
        process = await start("agent", *run_args(stub.base_url, out, config, "--limit", "3", "--concurrency", "2"))
        try:
            assert await asyncio.to_thread(policy.reached.wait, 60)
            sandboxes = descendants(process.pid)
            assert sandboxes, "the run started no sandbox process"
            process.send_signal(signum)
            code, _, stderr = await finish(process, timeout=60)
        finally:
            policy.release.set()
    assert code == expected, stderr
    assert_no_traceback(stderr)
    assert alive(sandboxes) == set(), "a sandbox process outlived the stopped run"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: 0 of 3 queries finished, 0 failed, 3 not done") and "run the same command again" in last
    session = manifest(out)["sessions"][0]
    assert session["status"] == "interrupted" and manifest(out)["status"] == "interrupted"
    assert (session["summary"]["finished"], session["summary"]["failed"], session["summary"]["pending"]) == (0, 0, 3)
    assert list((out / "failures").iterdir()) == [], "a cancelled query is not a failed one"
    assert not (out / ".lock").exists()


async def test_the_error_budget_is_exact_under_concurrency(tmp_path):
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    async with OpenAIStub(TwoSteps()) as stub:
        stub.fail_next(500, count=1000)
        code, _, stderr = await run(
            "agent", *run_args(stub.base_url, out, config, "--limit", "12", "--concurrency", "3", "--max-failures", "2")
        )
    assert code == 3, stderr
    (line,) = error_lines(stderr)
    assert "the run stopped after 3 failed queries (--max-failures 2)" in line
    failures = list((out / "failures").iterdir())
    summary = manifest(out)["summary"]
    assert len(failures) == summary["failed"] == 3 and manifest(out)["status"] == "aborted"
    assert summary["finished"] == 0 and summary["pending"] == 9
    # every query asked once (it fails at once); one cancelled before its request reached the server asked nothing
    assert 3 <= len(stub.requests) <= 3 + summary["cancelled"], "a query started after the budget was spent"


async def test_corrupt_run_json_is_refused_then_repaired_from_the_trajectories(tmp_path):
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    async with OpenAIStub(TwoSteps()) as stub:
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "2"))
        assert code == 0, stderr
        (out / "run.json").write_text('{"format": 1, "run_id": ')
        asked = len(stub.requests)
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "2"))
        assert code == 2
        (line,) = error_lines(stderr)
        assert "run.json" in line and "--repair" in line
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "2", "--repair"))
        assert code == 0, stderr
        assert len(stub.requests) == asked, "finished queries were solved again"
    assert "repaired:" in stderr
    data = manifest(out)
    assert data["status"] == "completed" and data["summary"]["finished"] == 2 and data["repairs"]
    assert list(out.glob("run.json.corrupt-*"))


async def test_corrupt_audit_database_is_refused_then_rebuilt_from_the_trajectories(tmp_path):
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    async with OpenAIStub(TwoSteps()) as stub:
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "2"))
        assert code == 0, stderr
        for side in out.glob("audit.sqlite-*"):
            side.unlink()
        (out / "audit.sqlite").write_bytes(b"this is not a database" * 100)
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "2"))
        assert code == 2
        (line,) = error_lines(stderr)
        assert "audit.sqlite" in line and "--repair" in line
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "2", "--repair"))
        assert code == 0, stderr
    code, listing, stderr = await run("agent", "audit", str(out), "--json")
    assert code == 0, stderr
    records = json.loads(listing)
    assert sorted((r["query_id"], r["node"], r["backend"]) for r in records) == [
        ("q0", "1-1", "recovered"), ("q0", "1-1-1", "recovered"), ("q1", "1-1", "recovered"), ("q1", "1-1-1", "recovered"),
    ]  # fmt: skip


async def test_audit_shows_the_latest_attempt_of_a_query_unless_asked_for_all(tmp_path):
    out, config, policy = tmp_path / "run", write_agent_config(tmp_path), TwoSteps(hold=True)
    async with OpenAIStub(policy) as stub:
        process = await start("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
        try:
            assert await asyncio.to_thread(policy.reached.wait, 60)
            process.send_signal(signal.SIGTERM)
            code, _, stderr = await finish(process, timeout=60)
            assert code == 143, stderr
        finally:
            policy.release.set()
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
        assert code == 0, stderr
    code, latest, _ = await run("agent", "audit", str(out), "--json")
    code_all, every, _ = await run("agent", "audit", str(out), "--json", "--all-attempts")
    assert code == code_all == 0
    assert [(r["attempt"], r["node"]) for r in json.loads(latest)] == [(2, "1-1"), (2, "1-1-1")]
    assert [(r["attempt"], r["node"]) for r in json.loads(every)] == [(1, "1-1"), (2, "1-1"), (2, "1-1-1")]
    assert [s["attempt"] for s in manifest(out)["sessions"]] == [1, 2]
    with sqlite3.connect(out / "audit.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM executions WHERE attempt IS NULL").fetchone() == (0,)


async def test_run_settings_and_agent_config_problems_come_in_one_line(tmp_path):
    config = write_agent_config(tmp_path)
    code, _, stderr = await run(
        "agent", *run_args("http://127.0.0.1:9/v1", tmp_path / "run", config, "--concurrency", "0", "--llm-timeout", "-1",
                           "--prm-retries", "-2"),
    )  # fmt: skip
    assert code == 2, stderr
    (line,) = error_lines(stderr)
    for key in ("--concurrency", "llm.timeout_s", "rm.retries"):
        assert key in line, line


async def test_operational_flags_reach_the_run_config(tmp_path):
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    async with OpenAIStub(TwoSteps()) as stub:
        code, _, stderr = await run(
            "agent", *run_args(stub.base_url, out, config, "--limit", "1", "--llm-timeout", "33", "--llm-retries", "1",
                               "--prm-timeout", "44", "--prm-retries", "5"),
        )  # fmt: skip
    assert code == 0, stderr
    settings = manifest(out)["config"]
    assert (settings["llm"]["timeout_s"], settings["llm"]["max_retries"]) == (33, 1)
    assert (settings["rm"]["timeout_s"], settings["rm"]["retries"]) == (44, 5)


async def test_a_second_collect_on_the_same_folder_is_refused_naming_the_holder(tmp_path):
    out, policy = tmp_path / "trees", TwoSteps(hold=True)
    args = ["collect", "--queries", str(TMDB_QUERIES), "--out", str(out), "--toolset", "tmdb", "--spec", str(TMDB_SPEC),
            "--limit", "1", "--n", "1", "--max-depth", "2", "--no-progress", "--model", "stub-model"]  # fmt: skip
    async with OpenAIStub(policy) as stub:
        first = await start("agent", *args, "--base-url", stub.base_url)
        try:
            assert await asyncio.to_thread(policy.reached.wait, 60)
            code, _, stderr = await run("agent", *args, "--base-url", stub.base_url)
            assert code == 2, stderr
            (line,) = error_lines(stderr)
            assert f"{out} is in use by agent collect (pid {first.pid} on {socket.gethostname()} since " in line
        finally:
            policy.release.set()
        code, _, stderr = await finish(first)
    assert code == 0, stderr


async def test_a_malformed_judge_answer_is_retried_then_one_line_naming_the_endpoint(tmp_path):
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    async with OpenAIStub(TwoSteps()) as stub:
        code, _, stderr = await run("agent", *run_args(stub.base_url, out, config, "--limit", "1"))
        assert code == 0, stderr
        asked = len(stub.requests)
        stub.malformed_next("no-choices", count=1000)
        code, _, stderr = await run(
            "evaluation", "sopr", str(out), "--judge-model", "judge", "--rounds", "1", "--base-url", stub.base_url
        )
    assert code == 1, stderr
    assert_no_traceback(stderr)
    (line,) = error_lines(stderr)
    assert line == f"error: LLM endpoint {stub.base_url} answered JSON without `choices` (5 attempts)"
    assert len(stub.requests) - asked == 5, "retried with the endpoint's backoff, then given up"
