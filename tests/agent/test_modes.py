"""Selection modes with a real PRM server in the loop.

The PRM server runs its `openai` backend against the stand-in OpenAI server, which plays a
vLLM-served PRM: its judge likes candidates whose text holds the word GOOD. The tiny-model
end-to-end test uses the `hf` backend for real.
"""

from __future__ import annotations

import math
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent import CodeToolAgent, QueryFailed
from agent.search import search_strategies
from agent.selection import create_selector, selection_modes
from agent.trajectory import StepNode
from codetool_kernel.errors import ConfigError
from rm import EndpointConfig, RewardModelServer, ScorerConfig, ServerConfig, create_scorer
from tests.support.openai_stub import OpenAIStub, Reply
from tests.support.policies import by_step, step


def _node(path: str, r_spot: float, r_lat: float | None = None) -> StepNode:
    return StepNode(path=path, depth=1, index=int(path.rsplit("-", 1)[1]), completion="", content="", r_spot=r_spot, r_lat=r_lat)


def test_the_three_rules_and_three_strategies_are_registered():
    assert selection_modes() == ["codetool", "no-latent", "no-spot"]
    assert {"beam", "greedy", "tree"} <= set(search_strategies()), "tests elsewhere register strategies of their own"


def test_codetool_sums_and_ties_go_first():
    selector = create_selector("codetool")
    assert selector.select([_node("1-1", 1, 0.2), _node("1-2", 0, 0.9), _node("1-3", 1, 0.2)]) == 0
    assert selector.select([_node("1-1", 0, 0.9), _node("1-2", 1, 0.1)]) == 1


def test_no_spot_uses_latent_only():
    assert create_selector("no-spot").select([_node("1-1", 1, 0.2), _node("1-2", 0, 0.9)]) == 1


def test_no_latent_is_random_among_ran_and_seeded():
    picks = {create_selector("no-latent", seed).select([_node("1-1", 0), _node("1-2", 1), _node("1-3", 1)]) for seed in range(40)}
    assert picks == {1, 2}
    nodes = [_node(f"1-{i}", 1) for i in range(1, 6)]
    again = [create_selector("no-latent", "7:q1").select(nodes) for _ in range(3)]
    assert len(set(again)) == 1
    assert create_selector("no-latent", 3).select([_node("1-1", 0), _node("1-2", 0)]) in (0, 1)


def _judge(body: dict[str, Any]) -> list[Reply]:
    candidate = body["messages"][-1]["content"]
    if "GOOD" in candidate:
        return [Reply(content="yes", top_logprobs={"yes": -0.1, "no": -2.5})]
    return [Reply(content="no", top_logprobs={"yes": -2.0, "no": -0.2})]


@asynccontextmanager
async def prm_server(judge=_judge) -> AsyncIterator[tuple[str, OpenAIStub]]:
    async with OpenAIStub(judge, model="prm") as judge_stub:
        config = ScorerConfig(model="prm", endpoint=EndpointConfig(base_url=judge_stub.base_url))
        async with create_scorer("openai", config) as scorer:
            async with RewardModelServer(scorer, ServerConfig(port=0), model="prm") as server:
                yield server.url, judge_stub


def _free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


GOOD_BUT_BROKEN = step(1, "GOOD plan", "print(undefined_name)", finished=True)
PLAIN_WORKING = step(1, "plain", "print('plain answer')", finished=True)
GOOD_WORKING = step(1, "GOOD answer", "print('good answer')", finished=True)


async def _solve(config, stb_provider, stb_g1_file, policy):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    async with OpenAIStub(policy) as stub:
        return await CodeToolAgent(config(stub.base_url)).solve(query, toolset)


async def test_codetool_mode_records_r_lat_and_logits(stb_provider, stb_g1_file, config_for):
    async with prm_server() as (url, judge_stub):
        trajectory = await _solve(
            lambda base: _with_rm(config_for(base, mode="codetool"), url),
            stb_provider, stb_g1_file, by_step([[PLAIN_WORKING, GOOD_WORKING]]),
        )
    plain, good = trajectory.node("1-1"), trajectory.node("1-2")
    assert plain.r_lat == pytest.approx(math.exp(-2.0) / (math.exp(-2.0) + math.exp(-0.2)))
    assert good.rm_logits == [-0.1, -2.5] and good.r_lat > 0.9
    assert good.chosen and good.reward == pytest.approx(1 + good.r_lat)
    assert len(judge_stub.requests) == 2, "one PRM request per candidate at the endpoint"
    judged = judge_stub.requests[0]["messages"]
    assert "Transfermarkt search" in judged[0]["content"] and judged[-1]["content"] in (plain.content, good.content)


async def test_no_spot_follows_the_prm_even_into_a_failing_step(stb_provider, stb_g1_file, config_for):
    async with prm_server() as (url, _):
        trajectory = await _solve(
            lambda base: _with_rm(config_for(base, mode="no-spot"), url),
            stb_provider, stb_g1_file, by_step([[PLAIN_WORKING, GOOD_BUT_BROKEN]]),
        )
    assert trajectory.chosen_path == ["1-2"] and trajectory.node("1-2").r_spot == 0.0


async def test_no_latent_never_asks_the_prm(stb_provider, stb_g1_file, config_for):
    async with prm_server() as (url, judge_stub):
        trajectory = await _solve(
            lambda base: _with_rm(config_for(base, mode="no-latent"), url),
            stb_provider, stb_g1_file, by_step([[GOOD_BUT_BROKEN, PLAIN_WORKING]]),
        )
    assert trajectory.chosen_path == ["1-2"], "the only candidate that ran"
    assert judge_stub.requests == [] and trajectory.node("1-2").r_lat is None


async def test_beam_keeps_k_paths_and_returns_the_best_finished(stb_provider, stb_g1_file, config_for):
    step1 = [step(1, "plain start", "x = 1\nprint(x)"), step(1, "GOOD start", "x = 2\nprint(x)")]
    step2 = [step(2, "GOOD answer", "print('answer', x)", finished=True), step(2, "plain answer", "print('answer', x)", finished=True)]
    async with prm_server() as (url, _):
        trajectory = await _solve(
            lambda base: _with_rm(config_for(base, mode="beam", beam_width=2), url),
            stb_provider, stb_g1_file, by_step([step1, step2]),
        )
    assert sorted(node.path for node in trajectory.nodes) == ["1-1", "1-1-1", "1-1-2", "1-2", "1-2-1", "1-2-2"]
    assert trajectory.chosen_path == ["1-2", "1-2-1"] and trajectory.final_answer == "answer 2"
    best = trajectory.node("1-2-1")
    assert best.cumulative_reward == pytest.approx(trajectory.node("1-2").reward + best.reward)


async def test_unreachable_prm_fails_the_query_clearly(stb_provider, stb_g1_file, config_for):
    with pytest.raises(QueryFailed, match="PRM|reward model") as info:
        await _solve(lambda base: _with_rm(config_for(base), _free_url(), retries=0), stb_provider, stb_g1_file,
                     by_step([[PLAIN_WORKING, GOOD_WORKING]]))
    assert "\n" not in str(info.value)


async def test_unreachable_prm_falls_back_when_configured(stb_provider, stb_g1_file, config_for):
    trajectory = await _solve(
        lambda base: _with_rm(config_for(base), _free_url(), retries=0, fallback_to_no_latent=True),
        stb_provider, stb_g1_file, by_step([[GOOD_BUT_BROKEN, PLAIN_WORKING]]),
    )
    assert trajectory.chosen_path == ["1-2"] and trajectory.final_answer == "plain answer"
    assert any("fell back to the no-latent policy" in note for note in trajectory.notes)


async def test_no_spot_without_prm_is_a_config_error(stb_provider, stb_g1_file, config_for):
    with pytest.raises(ConfigError, match="--rm-url"):
        await _solve(lambda base: config_for(base, mode="no-spot"), stb_provider, stb_g1_file, by_step([[PLAIN_WORKING]]))


async def test_codetool_with_the_tiny_model_served_by_hf(stb_provider, stb_g1_file, config_for, tiny_lm_dir):
    scorer_config = ScorerConfig(model=str(tiny_lm_dir))
    async with create_scorer("hf", scorer_config) as scorer:
        async with RewardModelServer(scorer, ServerConfig(port=0), model=str(tiny_lm_dir)) as server:
            trajectory = await _solve(
                lambda base: _with_rm(config_for(base, mode="codetool"), server.url),
                stb_provider, stb_g1_file, by_step([[PLAIN_WORKING, GOOD_WORKING]]),
            )
    for node in trajectory.nodes:
        assert node.r_lat is not None and 0.0 <= node.r_lat <= 1.0
        yes, no = node.rm_logits
        assert node.r_lat == pytest.approx(1 / (1 + math.exp(no - yes)))


def _with_rm(config, url: str, **rm: Any):
    return config.model_copy(update={"rm": config.rm.model_copy(update={"url": url, **rm})})


def test_random_module_not_used_globally():
    state = random.getstate()
    create_selector("no-latent", 1).select([_node("1-1", 1), _node("1-2", 1)])
    assert random.getstate() == state
