"""`export-tooleval` (StableToolBench's answer format) and `sopr --protocol reference`, on a real run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent import CodeToolAgent
from agent.runner import RunLayout
from evaluation import EvalEndpoint
from evaluation.prompts import REFERENCE_ANSWER_SYSTEM, REFERENCE_JUDGE_USER
from evaluation.rundata import load_run
from evaluation.sopr import SoprOptions, evaluate_sopr
from evaluation.tooleval_export import FINISH, export_tooleval, function_name
from tests.agent.conftest import agent_config, stb_provider
from tests.support.openai_stub import OpenAIStub, Reply, ToolCall
from tests.support.policies import messi_policy

GROUP = "G1_instruction"
__all__ = ["stb_provider"]


@pytest.fixture
async def run_dir(tmp_path: Path, stb_provider, stb_g1_file) -> Path:
    """A run of two queries: 588 solved (three steps, API calls), 608 failed before any step."""
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    async with OpenAIStub(messi_policy) as stub:
        trajectory = await CodeToolAgent(agent_config(stub.base_url)).solve(query, stb_provider.toolset_for(query))
    layout = RunLayout(tmp_path / "run")
    layout.prepare()
    layout.write_trajectory(trajectory)
    partial = trajectory.model_copy(update={"q_id": 608, "query": "Who coaches Barcelona?", "nodes": [], "chosen_path": []})
    layout.write_failure("608", "the policy endpoint failed", partial)
    layout.write_manifest({
        "benchmark": "stabletoolbench", "status": "completed", "created_at": "2026-01-01T00:00:00+00:00",
        "config": {"llm": {"model": "stub-model"}, "search": {"mode": "codetool", "n": 2, "max_depth": 5}},
        "settings": {"data": str(stb_g1_file.parent.parent), "filtered": True},
        "queries": [{"query_id": "588", "group": GROUP}, {"query_id": "608", "group": GROUP}],
    })  # fmt: skip
    return layout.root


async def test_export_writes_stabletoolbench_answers_that_end_in_finish(run_dir: Path, tmp_path: Path, stb_g1_file: Path):
    report = export_tooleval(load_run(run_dir), tmp_path / "out", "CodeTool")
    assert report.written == {GROUP: 2} and report.gave_up == ["608"]
    solved = json.loads((tmp_path / "out" / GROUP / "588_CodeTool.json").read_text())
    generation = solved["answer_generation"]
    assert generation["valid_data"] is True and generation["query"].startswith("I'm a football enthusiast")
    names = [function["name"] for function in generation["function"]]
    assert names[-1] == FINISH and function_name("TheClique/Transfermarkt search") in names
    api_list = next(q for q in json.loads(stb_g1_file.read_text()) if q["query_id"] == 588)["api_list"]
    assert names[: len(api_list)] == [function_name(f"{a['tool_name']}/{a['api_name']}") for a in api_list]
    search = generation["function"][names.index(function_name("TheClique/Transfermarkt search"))]
    assert search["parameters"]["required"] == ["name"] and search["description"]
    conversation = generation["train_messages"][-1]
    assert [m["role"] for m in conversation[:2]] == ["system", "user"] and conversation[1]["content"] == generation["query"]
    details = _answer_details(conversation)
    assert details[-1]["name"] == FINISH and details[-1]["response"] == ""
    finish = json.loads(details[-1]["arguments"])
    assert finish == {"return_type": "give_answer", "final_answer": finish["final_answer"]}
    assert finish["final_answer"].startswith("Messi:") and json.loads(generation["final_answer"]) == finish
    tools = [d for d in details[:-1] if "name" in d]
    assert [d["name"] for d in tools][:1] == [function_name("TheClique/Transfermarkt search")]
    assert json.loads(tools[0]["arguments"]) == {"name": "messi"}
    assert any("players:" in d["response"] for d in tools), "a step's output answers its call"

    failed = json.loads((tmp_path / "out" / GROUP / "608_CodeTool.json").read_text())["answer_generation"]
    last = failed["train_messages"][-1][-1]["function_call"]
    assert last["name"] == FINISH and json.loads(last["arguments"]) == {"return_type": "give_up_and_restart"}
    assert failed["query"] == "Who coaches Barcelona?", "a failed query stays in the evaluator's denominator"


def _answer_details(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Walk the conversation as StableToolBench's converter does: a call's response is the next message."""
    details, index = [], 2
    while index < len(conversation):
        message = conversation[index]
        assert message["role"] == "assistant", f"message {index} should be the assistant's"
        call = message.get("function_call")
        if call is None:
            details.append({"thought": message["content"]})
        elif call["name"] == FINISH:
            details.append({**call, "response": ""})
        else:
            response = conversation[index + 1]
            assert response["role"] == "function" and response["name"] == call["name"]
            details.append({**call, "response": response["content"]})
            index += 1
        index += 1
    return details


def test_export_refuses_a_method_name_that_breaks_file_names(run_dir: Path, tmp_path: Path):
    from codetool_kernel.errors import DataError

    with pytest.raises(DataError, match="without '_'"):
        export_tooleval(load_run(run_dir), tmp_path / "out", "Code_Tool")


class ReferenceJudgeServer:
    """Writer and judge of the reference protocol; checks what the protocol fixes."""

    def __init__(self) -> None:
        self.judge_bodies: list[dict[str, Any]] = []
        self.writer_bodies: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> list[Reply | str]:
        if body.get("tools"):
            self.judge_bodies.append(body)
            return [Reply(content=None, tool_calls=[ToolCall("check_answer_status", {"reason": "ok", "answer_status": "Solved"})])]
        self.writer_bodies.append(body)
        return ["Messi played for Barcelona, PSG and Inter Miami."]


@pytest.mark.parametrize("checkout", [False, True])
async def test_sopr_reference_protocol(run_dir: Path, tmp_path: Path, checkout: bool):
    stb_dir = None
    if checkout:
        stb_dir = tmp_path / "StableToolBench"
        template = stb_dir / "toolbench" / "tooleval" / "evaluators" / "tooleval_gpt-3.5-turbo_default" / "template.txt"
        template.parent.mkdir(parents=True)
        template.write_text(
            "<function>\n<name>other</name>\n<description>\nnot this {query}\n</description>\n</function>\n"
            "<function>\n<name>check_answer_status</name>\n<description>\nUSER TEXT Query: {query} Answer: {answer}\n"
            "</description>\n</function>\n"
        )
    server = ReferenceJudgeServer()
    async with OpenAIStub(server) as stub:
        options = SoprOptions(judge_model="judge", rounds=2, protocol="reference", stabletoolbench_dir=stb_dir)
        result, table = await evaluate_sopr(run_dir, EvalEndpoint(base_url=stub.base_url), options)

    assert len(server.writer_bodies) == 1, "the writer answers the solved query although its policy printed one"
    writer = server.writer_bodies[0]["messages"]
    assert writer[0]["content"] == REFERENCE_ANSWER_SYSTEM and "players:" in writer[1]["content"]
    assert len(server.judge_bodies) == 2, "one judgement per round of the answered query"
    for body in server.judge_bodies:
        assert body["temperature"] == 0
        assert body["tool_choice"] == {"type": "function", "function": {"name": "check_answer_status"}}
        text = body["messages"][-1]["content"]
        assert "Messi played for Barcelona, PSG and Inter Miami." in text and "football enthusiast" in text
        if checkout:
            assert text.startswith("USER TEXT Query:") and "not this" not in text
        else:
            assert text.startswith(REFERENCE_JUDGE_USER.split("\n", 1)[0])
    group = result["groups"][GROUP]
    assert group["queries"] == 2 and group["sopr"] == pytest.approx(50.0), "the failed query stays in the denominator"
    source = result["judge_prompt"]["source"]
    assert source == (str(template) if checkout else "codetool")
    assert ("StableToolBench's" in table.title) is checkout
    assert (run_dir / "eval" / "sopr_reference.json").exists() and not (run_dir / "eval" / "sopr.json").exists()
