"""Policy and PRM models run in this process: `--model hf:DIR`, `--rm-model DIR`, the embedded default, `vllm:`."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import codetool
from agent.config import DEFAULT_ENDPOINT_MODEL, DEFAULT_LOCAL_MODEL, LLMConfig
from agent.policy import Samples, Usage, choose_policy, create_policy_model
from agent.prompts import build_instruction, build_messages, step_stop
from codetool_kernel.errors import ConfigError
from codetool_kernel.lifecycle import AsyncLifecycle
from tests.support.cli import assert_no_traceback, error_lines, run
from tests.support.policies import step
from tools import Query, create_provider

QUERY = "What is six times seven?"
COMPLETION = step(1, "Multiply", "print(6 * 7)", finished=True)
STOP = step_stop(1)
ANSWER = COMPLETION.removesuffix(STOP)
"""What a sample holds: the completion cut before its stop string."""
FEEDBACK_CHARS = 500  # the default `search.feedback_chars`: the prompt the model learnt is built with it


@pytest.fixture(scope="session")
def numbers_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A StableToolBench tools folder with one small API, so that the policy's prompt stays short."""
    root = tmp_path_factory.mktemp("tools")
    (root / "Math").mkdir()
    tool = {
        "tool_name": "Numbers",
        "tool_description": "Facts about numbers",
        "api_list": [
            {
                "name": "Trivia",
                "description": "A fact about a number",
                "method": "GET",
                "required_parameters": [{"name": "number", "type": "NUMBER", "description": "the number"}],
                "optional_parameters": [],
            }
        ],
    }
    (root / "Math" / "numbers.json").write_text(json.dumps(tool))
    return root


@pytest.fixture(scope="session")
def numbers_queries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """QUERY as a StableToolBench query file whose API list is the numbers tool (the same docs as `numbers_tools`)."""
    api = {
        "category_name": "Math", "tool_name": "Numbers", "api_name": "Trivia", "api_description": "A fact about a number",
        "method": "GET", "required_parameters": [{"name": "number", "type": "NUMBER", "description": "the number"}],
        "optional_parameters": [],
    }  # fmt: skip
    path = tmp_path_factory.mktemp("queries") / "numbers.json"
    path.write_text(json.dumps([{"query": QUERY, "query_id": 7, "api_list": [api], "relevant APIs": [["Numbers", "Trivia"]]}]))
    return path


@pytest.fixture(scope="session")
def step_one_messages(numbers_tools: Path) -> list[dict[str, str]]:
    """The chat the agent sends for step 1 of QUERY with the numbers tools."""

    async def messages() -> list[dict[str, str]]:
        async with create_provider("stabletoolbench", tools_dir=str(numbers_tools)) as provider:
            toolset = provider.toolset_for(Query(query_id="query", text=QUERY))
        instruction = build_instruction(toolset.docs, toolset.usage_notes, FEEDBACK_CHARS)
        return build_messages(instruction, QUERY, [], FEEDBACK_CHARS)

    return asyncio.run(messages())


@pytest.fixture(scope="session")
def scripted_lm_dir(tmp_path_factory: pytest.TempPathFactory, step_one_messages: list[dict[str, str]]) -> Path:
    """A tiny checkpoint that answers step 1 of QUERY with COMPLETION."""
    from tests.support.scripted_lm import build_scripted_lm

    return build_scripted_lm(tmp_path_factory.mktemp("scripted_lm"), step_one_messages, COMPLETION)


def prompt_tokens(model_dir: Path, messages: Sequence[dict[str, str]]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return len(tokenizer.encode(text, add_special_tokens=False))


def completion_tokens(model_dir: Path, text: str) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(model_dir).encode(text, add_special_tokens=False))


def no_endpoint_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("OPENAI_BASE_URL", "CODETOOL_MODEL")}
    return {**env, **extra}


async def test_hf_policy_writes_n_samples_cut_before_the_stop_string_and_counts_usage(
    scripted_lm_dir: Path, step_one_messages: list[dict[str, str]]
) -> None:
    async with create_policy_model(LLMConfig(model=f"hf:{scripted_lm_dir}", max_tokens=200)) as policy:
        samples = await policy.sample(step_one_messages, n=3, stop=[STOP])
    assert samples.texts == [ANSWER] * 3
    assert samples.finish_reasons == ["stop"] * 3
    assert samples.usage.requests == 1
    assert samples.usage.prompt_tokens == prompt_tokens(scripted_lm_dir, step_one_messages)
    assert samples.usage.completion_tokens == 3 * completion_tokens(scripted_lm_dir, COMPLETION)


async def test_hf_policy_reports_length_when_max_tokens_ends_the_completion(
    scripted_lm_dir: Path, step_one_messages: list[dict[str, str]]
) -> None:
    async with create_policy_model(LLMConfig(model=f"hf:{scripted_lm_dir}", max_tokens=4)) as policy:
        samples = await policy.sample(step_one_messages, n=2, stop=[STOP])
    assert samples.finish_reasons == ["length", "length"]
    assert samples.usage.completion_tokens == 8
    assert all(text and COMPLETION.startswith(text) and text != ANSWER for text in samples.texts)


async def test_hf_policy_sampling_is_seeded(tiny_lm_dir: Path) -> None:
    messages = [{"role": "user", "content": "Write the next step."}]

    async def draw(seed: int) -> list[str]:
        config = LLMConfig(model=f"hf:{tiny_lm_dir}", max_tokens=12, temperature=1.0, seed=seed)
        async with create_policy_model(config) as policy:
            return (await policy.sample(messages, n=2)).texts

    first = await draw(seed=7)
    assert await draw(seed=7) == first
    assert await draw(seed=8) != first


async def test_public_solve_with_an_in_process_policy_and_prm(
    scripted_lm_dir: Path, tiny_lm_dir: Path, numbers_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    trajectory = await codetool.solve_async(
        QUERY,
        tools="stabletoolbench",
        tool_options={"tools_dir": str(numbers_tools)},
        overrides={"llm": {"model": f"hf:{scripted_lm_dir}"}, "rm": {"model": str(tiny_lm_dir)}, "search": {"n": 2}},
    )
    assert trajectory.stop_reason == "finished" and "42" in (trajectory.final_answer or "")
    assert trajectory.model == f"hf:{scripted_lm_dir}"
    candidates = [node for node in trajectory.nodes if node.depth == 1]
    assert [node.completion for node in candidates] == [ANSWER, ANSWER]
    assert all(node.r_lat is not None and 0.0 <= node.r_lat <= 1.0 for node in candidates)
    [record] = trajectory.sampling
    assert record.n == 2 and record.requests == 1
    assert record.completion_tokens == 2 * completion_tokens(scripted_lm_dir, COMPLETION)


async def test_cli_solve_with_an_in_process_policy_and_prm(
    scripted_lm_dir: Path, tiny_lm_dir: Path, numbers_tools: Path, tmp_path: Path
) -> None:
    out = tmp_path / "trajectory.json"
    code, _, stderr = await run(
        "codetool", "solve", QUERY, "--toolset", "stabletoolbench", "--tools-dir", str(numbers_tools),
        "--model", f"hf:{scripted_lm_dir}", "--rm-model", str(tiny_lm_dir), "--n", "2", "--out", str(out),
        env=no_endpoint_env(),
    )  # fmt: skip
    assert code == 0, stderr
    trajectory = json.loads(out.read_text())
    assert trajectory["stop_reason"] == "finished" and "42" in trajectory["final_answer"]
    assert trajectory["model"] == f"hf:{scripted_lm_dir}"
    assert [node["r_lat"] is not None for node in trajectory["nodes"]] == [True, True]


async def test_benchmark_run_with_an_in_process_policy_and_prm(
    scripted_lm_dir: Path, tiny_lm_dir: Path, numbers_queries: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, _, stderr = await run(
        "agent", "run", "--benchmark", "stabletoolbench", "--data", str(numbers_queries), "--out", str(out),
        "--model", f"hf:{scripted_lm_dir}", "--rm-model", str(tiny_lm_dir), "--n", "2", "--no-progress",
        env=no_endpoint_env(),
    )  # fmt: skip
    assert code == 0, stderr
    [written] = (out / "trajectories").iterdir()
    trajectory = json.loads(written.read_text())
    assert "42" in trajectory["final_answer"] and all(node["r_lat"] is not None for node in trajectory["nodes"])
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["identity"]["model"] == f"hf:{scripted_lm_dir}" and manifest["endpoints"] == []


async def test_tree_collection_with_an_in_process_policy(
    scripted_lm_dir: Path, numbers_queries: Path, tmp_path: Path
) -> None:
    out = tmp_path / "trees"
    code, _, stderr = await run(
        "agent", "collect", "--queries", str(numbers_queries), "--out", str(out), "--toolset", "stabletoolbench",
        "--model", f"hf:{scripted_lm_dir}", "--n", "2", "--max-depth", "1", "--no-progress", env=no_endpoint_env(),
    )  # fmt: skip
    assert code == 0, stderr
    [tree_file] = (out / "dfs_data").iterdir()
    tree = json.loads(tree_file.read_text())
    assert tree["model"] == f"hf:{scripted_lm_dir}"
    assert [record["res"].strip() for record in tree["exec_res"].values()] == ["42", "42"]


async def test_without_an_endpoint_or_weights_one_line_says_what_to_set(numbers_tools: Path, tmp_path: Path) -> None:
    empty_home = tmp_path / "hf_home"
    empty_home.mkdir()
    code, _, stderr = await run(
        "codetool", "solve", QUERY, "--toolset", "stabletoolbench", "--tools-dir", str(numbers_tools),
        env=no_endpoint_env(HF_HUB_OFFLINE="1", HF_HOME=str(empty_home)),
    )  # fmt: skip
    assert_no_traceback(stderr)
    [line] = error_lines(stderr)
    assert code == 2
    assert DEFAULT_LOCAL_MODEL in line
    assert line.endswith("set --base-url or OPENAI_BASE_URL for a server, or --model hf:PATH for local weights")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
async def test_vllm_backend_without_vllm_says_so_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        async with create_policy_model(LLMConfig(model="vllm:Qwen/Qwen2.5-Coder-7B-Instruct")):
            pass
    message = str(caught.value)
    assert "\n" not in message and "vllm" in message and "pip install 'codetool[vllm]'" in message


def test_the_backend_is_picked_by_the_model_prefix_then_by_an_endpoint() -> None:
    endpoint = "http://127.0.0.1:9/v1"
    picks = {
        "hf:/models/coder": choose_policy(LLMConfig(model="hf:/models/coder", base_url=endpoint)),
        "openai:served": choose_policy(LLMConfig(model="openai:served", base_url=endpoint)),
        "ollama-style": choose_policy(LLMConfig(model="qwen2.5-coder:7b", base_url=endpoint)),
        "endpoint default": choose_policy(LLMConfig(base_url=endpoint)),
        "balanced": choose_policy(LLMConfig(model="served"), endpoints=[endpoint]),
        "nothing set": choose_policy(LLMConfig()),
        "name, no endpoint": choose_policy(LLMConfig(model="org/coder")),
    }
    summary = {case: (pick.backend, pick.config.model, pick.implicit) for case, pick in picks.items()}
    assert summary == {
        "hf:/models/coder": ("hf", "/models/coder", False),
        "openai:served": ("openai", "served", False),
        "ollama-style": ("openai", "qwen2.5-coder:7b", False),
        "endpoint default": ("openai", DEFAULT_ENDPOINT_MODEL, False),
        "balanced": ("openai", "served", False),
        "nothing set": ("hf", DEFAULT_LOCAL_MODEL, True),
        "name, no endpoint": ("hf", "org/coder", True),
    }


def test_model_choices_that_cannot_work_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"needs an endpoint: set --base-url or OPENAI_BASE_URL$"):
        create_policy_model(LLMConfig(model="openai:served"))
    with pytest.raises(ConfigError, match="names no model after 'hf:'"):
        create_policy_model(LLMConfig(model="hf:"))
    with pytest.raises(ConfigError, match="--endpoint serves an OpenAI-compatible model"):
        create_policy_model(LLMConfig(model="hf:/models/coder"), endpoints=["http://127.0.0.1:9/v1"])


async def test_rm_url_and_rm_model_together_are_refused(numbers_tools: Path) -> None:
    with pytest.raises(ConfigError, match=r"set either --rm-url .* or --rm-model .*, not both$"):
        await codetool.solve_async(
            QUERY,
            tools="stabletoolbench",
            tool_options={"tools_dir": str(numbers_tools)},
            overrides={"llm": {"model": "plugin-policy-test:any"}, "rm": {"url": "http://127.0.0.1:9", "model": "prm"}},
        )


@codetool.register_policy_model("plugin-policy-test")
class PluginPolicy(AsyncLifecycle):
    """A user's own backend: answers every step with COMPLETION cut before the stop string."""

    calls: list[tuple[int, tuple[str, ...]]] = []

    def __init__(self, config: LLMConfig) -> None:
        self.config = config

    async def sample(self, messages: Sequence[dict[str, str]], *, n: int, stop: Sequence[str] = ()) -> Samples:
        PluginPolicy.calls.append((n, tuple(stop)))
        return Samples(texts=[ANSWER] * n, finish_reasons=["stop"] * n, usage=Usage(1, 2 * n, 1))


async def test_a_registered_policy_backend_is_picked_by_its_prefix(numbers_tools: Path) -> None:
    trajectory = await codetool.solve_async(
        QUERY,
        tools="stabletoolbench",
        tool_options={"tools_dir": str(numbers_tools)},
        overrides={"llm": {"model": "plugin-policy-test:mine"}, "search": {"n": 3}},
    )
    assert PluginPolicy.calls == [(3, (STOP,))]
    assert trajectory.model == "plugin-policy-test:mine" and "42" in (trajectory.final_answer or "")


async def test_a_missing_model_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^policy model folder .*missing does not exist$"):
        async with create_policy_model(LLMConfig(model=f"hf:{tmp_path / 'missing'}")):
            pass


async def test_without_transformers_the_hf_backend_names_the_extra(
    tiny_lm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if the `hf` extra were not installed
    with pytest.raises(ConfigError, match=r"^the hf policy backend needs transformers: pip install 'codetool\[hf\]'$"):
        async with create_policy_model(LLMConfig(model=f"hf:{tiny_lm_dir}")):
            pass
