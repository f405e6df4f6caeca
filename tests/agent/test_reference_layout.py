"""Trajectory files in the reference release's layout: what we write, and theirs and our older ones read back.

Also the node names where a user types them (the audit filter)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent import CodeToolAgent
from agent.runner import RunLayout
from agent.trajectory import Trajectory
from codetool_kernel.files import write_json_atomic
from evaluation import load_run, render_report, scep_of, useful_outputs
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import messi_policy


async def _messi(stb_provider, stb_g1_file, config_for) -> Trajectory:
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    async with OpenAIStub(messi_policy) as stub:
        return await CodeToolAgent(config_for(stub.base_url)).solve(query, stb_provider.toolset_for(query))


async def test_the_reference_part_lists_every_explored_node(stb_provider, stb_g1_file, config_for):
    trajectory = await _messi(stb_provider, stb_g1_file, config_for)
    data = trajectory.to_json()

    assert data["q_id"] == 588 and isinstance(data["q_id"], int), "StableToolBench's query_id is an int"
    names = [entry["path_name"] for entry in data["infer_path"]]
    assert sorted(names) == sorted(node.path for node in trajectory.nodes) and len(names) == 6
    assert set(data["exec_res"]) == set(names)
    assert [e["path_name"] for e in data["infer_path"] if e["chosen"]] == trajectory.chosen_path == ["1-1", "1-1-1", "1-1-1-1"]
    assert names[-3:] == trajectory.chosen_path, "the chosen path comes last, so the last entry is the chosen leaf"
    assert data["infer_path"][-1]["is_leaf"] and "[All Finished]" in data["infer_path"][-1]["content"]
    assert data["answer"] == trajectory.final_answer and data["answer"].startswith("Messi:")
    for name in names:
        assert name.startswith("1-") and name.count("-") == trajectory.node(name).depth

    first, second = trajectory.node("1-1"), trajectory.node("1-1-1")
    record = data["exec_res"]["1-1-1"]
    assert record["code"] == first.code.rstrip("\n") + "\n" + second.code.rstrip("\n"), "the program so far"
    assert record["step_code"] == second.code and record["status"] == 0 and record["res"] == second.stdout
    content = data["infer_path"][names.index("1-1-1")]["content"]
    assert content == first.content + second.content, "the text of the whole path"

    again = Trajectory.from_json(copy.deepcopy(data))
    assert again.model_dump() == trajectory.model_dump()


def test_an_older_file_of_ours_loads_with_the_current_names():
    old_names = {"1": None, "2": None, "2-1": "2", "2-2": "2"}
    nodes = [_our_node(path, parent) for path, parent in old_names.items()]
    data = {
        "schema_version": 1, "q_id": "42", "query": "q", "instruction": "i", "nodes": nodes,
        "sampling": [{"parent": None, "depth": 1, "n": 2, "latency_s": 0, "prompt_tokens": 1, "completion_tokens": 1, "requests": 1},
                     {"parent": "2", "depth": 2, "n": 2, "latency_s": 0, "prompt_tokens": 1, "completion_tokens": 1, "requests": 1}],
        "chosen_path": ["2", "2-1"], "final_answer": "done", "finished": True,
        "infer_path": [{"path_name": "2", "content": "", "is_leaf": False}], "exec_res": {"2": {"code": "", "res": "", "status": 0}},
    }  # fmt: skip
    trajectory = Trajectory.from_json(data)
    assert [node.path for node in trajectory.nodes] == ["1-1", "1-2", "1-2-1", "1-2-2"]
    assert [node.parent for node in trajectory.nodes] == [None, None, "1-2", "1-2"]
    assert trajectory.chosen_path == ["1-2", "1-2-1"] and trajectory.sampling[1].parent == "1-2"
    assert trajectory.to_json()["schema_version"] == 2


def _our_node(path: str, parent: str | None) -> dict[str, Any]:
    return {"path": path, "depth": path.count("-") + 1, "index": int(path[-1]), "parent": parent, "completion": "",
            "content": f"step {path}\n", "code": "print(1)", "status": 0, "stdout": "1\n", "r_spot": 1.0}  # fmt: skip


S1 = "##Step 1: Find the player\n```python\nimport requests\nplayers = ['messi']\nprint(players)\n```\n[Step 1 Finished]\n"
S2 = "##Step 2: His club\n```python\nprint('Messi: Inter Miami')\n```\n[All Finished]\n[Step 2 Finished]\n"


def reference_trajectory() -> dict[str, Any]:
    """A trajectory as the reference release's inference writes it: the chosen path only, no marks."""
    code1 = "import requests\nplayers = ['messi']\npass"
    return {
        "q_id": 588,
        "query": "Which club does Messi play for?",
        "instruction": "You are given these APIs ... Based on provided APIs, write code step by step.",
        "infer_path": [
            {"path_name": "1-2", "content": S1, "is_leaf": False},
            {"path_name": "1-2-1", "content": S1 + S2, "is_leaf": True},
        ],
        "exec_res": {
            "1-2": {"code": code1, "res": "['messi']", "status": 0},
            "1-2-1": {"code": code1 + "\npass", "res": "Messi: Inter Miami", "status": 0},
        },
        "answer": "Messi plays for Inter Miami.",
    }


def test_a_reference_trajectory_reads_into_our_model():
    trajectory = Trajectory.from_json(reference_trajectory())
    assert trajectory.q_id == 588 and trajectory.chosen_path == ["1-2", "1-2-1"]
    first, last = trajectory.chosen_nodes()
    assert (first.parent, last.parent, last.depth, last.index) == (None, "1-2", 2, 1)
    assert first.content == S1 and last.content == S2
    assert first.code.startswith("import requests") and last.code.strip() == "print('Messi: Inter Miami')"
    assert first.stdout == "['messi']" and last.finished and last.is_leaf
    assert trajectory.finished and trajectory.stop_reason == "finished"
    assert trajectory.final_answer == "Messi plays for Inter Miami."
    assert any("reference" in note for note in trajectory.notes)


def test_our_evaluation_tools_read_a_run_of_reference_trajectories(tmp_path: Path):
    layout = RunLayout(tmp_path)
    layout.prepare()
    failed = reference_trajectory()
    failed["q_id"] = 608
    failed["exec_res"]["1-2"].update(status=1, res="Exception Type: KeyError, Exception Value: 'x'")
    for data in (reference_trajectory(), failed):
        write_json_atomic(layout.trajectory_path(str(data["q_id"])), data)
    layout.write_manifest({
        "benchmark": "stabletoolbench", "status": "completed", "created_at": "2026-01-01T00:00:00+00:00",
        "config": {"llm": {"model": "reference-model"}, "search": {"mode": "codetool", "n": 2, "max_depth": 5}},
        "queries": [{"query_id": "588", "group": "G1_instruction"}, {"query_id": "608", "group": "G1_instruction"}],
    })  # fmt: skip

    run = load_run(tmp_path)
    assert [result.problem for result in run.results] == [None, None]
    good, bad = (result.trajectory for result in run.results)
    assert [path for path, _ in useful_outputs(good)] == ["1-2", "1-2-1"]
    assert bad.node("1-2").error and bad.node("1-2").r_spot == 0.0
    scep = scep_of(run)
    assert scep["groups"]["G1_instruction"]["steps"] == 4 and scep["groups"]["G1_instruction"]["succeeded"] == 3
    html = render_report(run)
    assert 'data-path="1-2-1"' in html and "Inter Miami" in html


async def test_exec_res_lists_the_chosen_path_first(stb_provider, stb_g1_file, config_for):
    trajectory = await _messi(stb_provider, stb_g1_file, config_for)
    assert list(trajectory.to_json()["exec_res"])[:3] == trajectory.chosen_path


def test_the_audit_filter_refuses_a_node_name_of_the_old_form(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "agent", "audit", str(tmp_path / "audit.sqlite"), "--node", "2-1"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 2 and "'2-1' is not a node name: the root is 1" in done.stderr
