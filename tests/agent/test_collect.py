"""`agent collect` on two StableToolBench queries: stand-in LLM, real sandbox, gateway and virtual API server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.collect import FAILURES_FILE, TreeCollector
from agent.prompts import build_instruction
from agent.trajectory import StepNode
from codetool_kernel.errors import DataError
from rm.labelling import label_trees
from rm.tree import DFS_DIR, load_tree, path_order, tree_file
from tests.agent.conftest import agent_config
from tests.rm_data.tree_policy import tree_policy
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import coppola_policy, step_of
from tools import create_provider
from tools.toolset import Query, ToolProvider

REPO = Path(__file__).resolve().parents[2]
QUERY_IDS = ["588", "1073"]
EXPECTED_PATHS = ["1-1", "1-1-1", "1-1-1-1", "1-1-1-2", "1-1-2", "1-2", "1-2-1", "1-2-1-1", "1-2-1-2", "1-2-2"]


@pytest.fixture
async def stb_provider() -> AsyncIterator[ToolProvider]:
    async with create_provider("stabletoolbench") as provider:
        yield provider


@pytest.fixture
def two_queries(tmp_path: Path, stb_g1_file: Path) -> Path:
    """A query file holding StableToolBench G1 queries 588 and 1073, in that order."""
    entries = {str(entry["query_id"]): entry for entry in json.loads(stb_g1_file.read_text())}
    file = tmp_path / "queries.json"
    file.write_text(json.dumps([entries[q] for q in QUERY_IDS]))
    return file


async def test_every_node_of_both_trees_is_recorded_in_the_reference_layout(stb_provider, two_queries, tmp_path) -> None:
    queries = stb_provider.load_queries(str(two_queries))
    async with OpenAIStub(tree_policy) as stub:
        async with TreeCollector(agent_config(stub.base_url, n=2, max_depth=3), concurrency=2) as collector:
            report = await collector.collect(queries, stb_provider.toolset_for, tmp_path)

    assert sorted(report.written) == sorted(QUERY_IDS) and report.failed == {} and report.skipped == []
    assert (report.progress.nodes, report.progress.exec_ok, report.progress.exec_failed) == (20, 6, 6)
    # One sampling request per expanded node (root 1, 1-1, 1-1-1, 1-2, 1-2-1), level after level within each query.
    assert len(stub.requests) == 10
    for query in queries:
        depths = [step_of(body) for body in stub.requests if query.text in last_user_text_of_task(body)]
        assert depths == sorted(depths) and len(depths) == 5

    for query in queries:
        raw = json.loads(tree_file(tmp_path, query.query_id).read_text())
        assert list(raw)[:5] == ["q_id", "query", "instruction", "infer_path", "exec_res"]
        assert (raw["q_id"], raw["query"]) == (int(query.query_id), query.text), "StableToolBench's own int id"
        assert [entry["path_name"] for entry in raw["infer_path"]] == EXPECTED_PATHS, "depth-first order"
        for entry in raw["infer_path"]:
            assert isinstance(entry["content"], str) and isinstance(entry["is_leaf"], bool)
            record = raw["exec_res"][entry["path_name"]]
            assert set(record) == {"code", "res", "status", "step_code"} and isinstance(record["status"], int)
        tree = load_tree(tree_file(tmp_path, query.query_id))
        toolset = stb_provider.toolset_for(query)
        assert tree.api_docs == toolset.docs and tree.instruction == build_instruction(toolset.docs, toolset.usage_notes, 500)
        assert (tree.n, tree.max_depth, tree.toolset) == (2, 3, "stabletoolbench")
        status = {path: tree.exec_res[path].status for path in EXPECTED_PATHS}
        assert status == {"1-1": 0, "1-1-1": 0, "1-1-1-1": 0, "1-1-1-2": 1, "1-1-2": 1, "1-2": 1, "1-2-1": 1, "1-2-1-1": 1, "1-2-1-2": 1, "1-2-2": 1}
        leaves = {entry.path_name for entry in tree.infer_path if entry.is_leaf}
        assert leaves == {"1-1-1-1", "1-1-1-2", "1-1-2", "1-2-1-1", "1-2-1-2", "1-2-2"}
        assert "KeyError: 'missing'" in tree.exec_res["1-2"].res
        assert "NameError" in tree.exec_res["1-2-1"].res, "a step that raised is not replayed for its children"
        # The reference's content is the whole path's text; ours beside it is the step's own text.
        assert tree.entry("1-1-1-1").content == "".join(tree.entry(p).step_content for p in ("1-1", "1-1-1", "1-1-1-1"))
        assert tree.exec_res["1-1-1"].code.startswith("import requests\nfirst = requests.post(")
        nodes = [StepNode.model_validate(record) for record in tree.nodes]
        assert sorted((n.path for n in nodes), key=path_order) == EXPECTED_PATHS
        first = next(n for n in nodes if n.path == "1-1")
        assert [call.api_name for call in first.api_calls] == [toolset.apis[0].name]
        assert all(tree.entry(n.path).step_content == n.content and tree.exec_res[n.path].res == n.output for n in nodes)
        assert tree.usage["requests"] == 5 and tree.usage["completion_tokens"] > 0


async def test_tmdb_trees_are_collected_and_identical_siblings_make_no_pairs(tmdb_spec, tmdb_queries, tmp_path) -> None:
    async with create_provider("tmdb", spec_path=str(tmdb_spec)) as provider, OpenAIStub(coppola_policy) as stub:
        queries = provider.load_queries(str(tmdb_queries), ids=["q0"])
        async with TreeCollector(agent_config(stub.base_url, n=2, max_depth=2)) as collector:
            report = await collector.collect(queries, provider.toolset_for, tmp_path)
        docs = provider.toolset_for(queries[0]).docs
    assert report.written == ["q0"] and report.progress.exec_ok == 6
    tree = load_tree(tree_file(tmp_path, "q0"))
    assert [e.path_name for e in tree.infer_path] == ["1-1", "1-1-1", "1-1-2", "1-2", "1-2-1", "1-2-2"]
    assert tree.api_docs == docs and "GET_search_person" in docs and tree.toolset == "tmdb"
    assert "directed:" in tree.exec_res["1-2-2"].res
    stats = label_trees(tmp_path, tmp_path)
    assert (stats.nodes, stats.leaves, stats.pairs, stats.examples) == (6, 4, 0, 0), "the policy wrote the same step twice"


def last_user_text_of_task(body: dict[str, Any]) -> str:
    """The task message (the first user turn), which holds the query."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


async def test_a_failing_query_is_reported_and_retried_on_the_next_run(stb_provider, two_queries, tmp_path) -> None:
    queries = stb_provider.load_queries(str(two_queries))
    broken = queries[0].text

    def policy(body: dict[str, Any]) -> list[str]:
        if broken in last_user_text_of_task(body) and step_of(body) == 2:
            raise RuntimeError("the stand-in model breaks")  # the stub answers HTTP 500
        return tree_policy(body)

    async with OpenAIStub(policy) as stub:
        config = agent_config(stub.base_url, n=2, max_depth=3)
        async with TreeCollector(config, concurrency=2) as collector:
            report = await collector.collect(queries, stb_provider.toolset_for, tmp_path)
    assert report.written == ["1073"] and list(report.failed) == ["588"]
    assert "HTTP 500" in report.failed["588"]
    assert not tree_file(tmp_path, "588").exists()
    assert json.loads((tmp_path / FAILURES_FILE).read_text()) == report.failed

    async with OpenAIStub(tree_policy) as stub:
        async with TreeCollector(agent_config(stub.base_url, n=2, max_depth=3)) as collector:
            again = await collector.collect(queries, stb_provider.toolset_for, tmp_path)
    assert again.written == ["588"] and again.skipped == ["1073"] and again.failed == {}
    assert all(broken in last_user_text_of_task(body) for body in stub.requests)
    assert not (tmp_path / FAILURES_FILE).exists()


async def test_killed_run_keeps_finished_files_and_resumes(two_queries: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    second_started, release = threading.Event(), threading.Event()
    second_query = json.loads(two_queries.read_text())[1]["query"]

    def policy(body: dict[str, Any]) -> list[str]:
        if second_query in last_user_text_of_task(body):
            second_started.set()
            release.wait(120)  # hold the second query until the collector has been killed
        return tree_policy(body)

    async with OpenAIStub(policy) as stub:
        args = [
            "-m", "agent", "collect", "--queries", str(two_queries), "--out", str(out), "--toolset", "stabletoolbench",
            "--base-url", stub.base_url, "--model", "stub-model", "--n", "2", "--max-depth", "3", "--concurrency", "1",
        ]  # fmt: skip
        env = {**os.environ, "OPENAI_API_KEY": "test"}
        first_run = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            # With one query at a time, the second query's first request means the first one's file is written.
            assert await asyncio.to_thread(second_started.wait, 120), "the collector never reached the second query"
        finally:
            first_run.kill()
            await first_run.wait()
            release.set()
        finished = tree_file(out, "588")
        assert finished.exists() and not tree_file(out, "1073").exists()
        assert [p.name for p in (out / DFS_DIR).iterdir()] == [finished.name], "no partial or temporary file"
        kept = (finished.read_bytes(), finished.stat().st_mtime_ns)
        (out / DFS_DIR / ".1073_path.json.x1y2.tmp").write_text('{"q_id": "1073", "infer_pa')  # as if killed mid-write
        requests_before = len(stub.requests)

        second_run = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(second_run.communicate(), 180)
        assert second_run.returncode == 0, stderr.decode()[-2000:]

    assert "collected 1 queries, skipped 1 finished earlier, 0 failed" in stdout.decode()
    assert (finished.read_bytes(), finished.stat().st_mtime_ns) == kept, "the finished query was not redone"
    assert all(second_query in last_user_text_of_task(body) for body in stub.requests[requests_before:])
    assert sorted(p.name for p in (out / DFS_DIR).iterdir()) == ["1073_path.json", "588_path.json"]
    assert [e.path_name for e in load_tree(tree_file(out, "1073")).infer_path] == EXPECTED_PATHS


async def test_query_ids_that_would_share_a_file_are_refused(tmp_path: Path) -> None:
    queries = [Query(query_id="a/b", text="one"), Query(query_id="a_b", text="two")]
    with pytest.raises(DataError, match="query ids 'a/b' and 'a_b' would share one file"):
        await TreeCollector(agent_config("http://127.0.0.1:9/v1")).collect(queries, lambda q: None, tmp_path)


def test_collect_command_reports_a_missing_query_file_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "collect", "--queries", str(tmp_path / "none.json"), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip() == f"error: {tmp_path / 'none.json'}: no such file"
