"""Prompt templates and search strategies as the config, the collector, the runner's records and the CLI see them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.collect import TreeCollector
from agent.config import load_config, update_config
from agent.runner import RunSettings
from agent.runner.manifest import identity
from rm.tree import load_tree, tree_file
from tests.agent.conftest import agent_config
from tests.agent.test_cli import _agent
from tests.rm_data.tree_policy import tree_policy
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import coppola_policy

TASK = "The user asks: {query}\nStart with ##Step 1."
FEEDBACK = "Printed by step {step}: {output}\nWrite step {next_step} now."


async def test_collect_prompts_with_the_configured_templates(stb_provider, stb_g1_file, tmp_path: Path) -> None:
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    async with OpenAIStub(tree_policy) as stub:
        config = update_config(agent_config(stub.base_url, n=2, max_depth=2), {"prompts": {"task": TASK, "feedback": FEEDBACK}})
        async with TreeCollector(config) as collector:
            report = await collector.collect([query], stb_provider.toolset_for, tmp_path)
    assert report.written == ["588"]
    tasks = {body["messages"][1]["content"] for body in stub.requests}
    assert tasks == {f"The user asks: {query.text}\nStart with ##Step 1."}
    feedback = [body["messages"][3]["content"] for body in stub.requests if len(body["messages"]) > 2]
    assert feedback and all(text.startswith("Printed by step 1: ") and text.endswith("Write step 2 now.") for text in feedback)
    assert load_tree(tree_file(tmp_path, "588")).instruction == stub.requests[0]["messages"][0]["content"]


def test_prompts_in_a_yaml_config_are_files_or_text(tmp_path: Path) -> None:
    feedback = tmp_path / "feedback.txt"
    feedback.write_text(FEEDBACK)
    config_file = tmp_path / "agent.yaml"
    config_file.write_text(f"prompts:\n  task: 'Task: {{query}}'\n  feedback: {feedback}\n")
    config = load_config(config_file, environ={})
    assert (config.prompts.task, config.prompts.feedback, config.prompts.instruction) == ("Task: {query}", FEEDBACK, None)


def _identity(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    settings = RunSettings(benchmark="tmdb", data=tmp_path, out=tmp_path / "run")
    return identity(settings, load_config(overrides=overrides, environ={}))


def test_run_records_keep_their_form_and_name_custom_prompts(tmp_path: Path) -> None:
    plain = _identity(tmp_path)
    assert "prompts" not in plain and "strategy" not in plain["search"] and plain["search"]["mode"] == "codetool"
    legacy = _identity(tmp_path, search={"mode": "beam"})
    assert legacy == _identity(tmp_path, search={"strategy": "beam", "mode": "codetool"}), "one search, one record"
    assert legacy["search"]["mode"] == "beam" and "strategy" not in legacy["search"]
    tree = _identity(tmp_path, search={"strategy": "tree", "mode": "no-latent"})["search"]
    assert tree == {**plain["search"], "mode": "no-latent", "strategy": "tree"}
    assert _identity(tmp_path, prompts={"task": TASK})["prompts"] == {"task": TASK}


async def test_solve_cli_takes_a_strategy_and_still_reads_mode_beam(tmdb_spec: Path, tmp_path: Path) -> None:
    async with OpenAIStub(coppola_policy) as stub:
        records = {}
        for flags in (("--strategy", "beam", "--mode", "no-latent"), ("--mode", "beam")):
            out_file = tmp_path / f"{flags[-1]}.json"
            code, _, stderr = await _agent(
                "solve", "movies directed by Sofia Coppola", "--toolset", "tmdb", "--spec", str(tmdb_spec),
                "--base-url", stub.base_url, "--n", "2", "--beam-width", "1", *flags, "--out", str(out_file),
            )  # fmt: skip
            assert code == 0, stderr
            records[flags[-1]] = (json.loads(out_file.read_text()), stderr)
    beam_no_latent, _ = records["no-latent"]
    assert beam_no_latent["mode"] == "beam:no-latent" and beam_no_latent["stop_reason"] == "finished"
    legacy, stderr = records["beam"]
    assert legacy["mode"] == "beam" and "deprecated" in stderr and "--strategy beam" in stderr


async def test_an_unknown_strategy_or_rule_on_the_command_line_is_one_line() -> None:
    cases = (
        (("--strategy", "sideways"), "unknown search strategy 'sideways'; choose one of beam, greedy, tree"),
        (("--mode", "loud"), "unknown selection rule 'loud'; choose one of codetool, no-latent, no-spot"),
    )
    for flags, says in cases:
        code, _, stderr = await _agent("solve", "anything", "--toolset", "tmdb", *flags)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and says in lines[0], stderr
