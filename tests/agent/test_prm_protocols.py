"""The agent with a PRM served in the reference release's contract (`/generate` only), and with ours."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent import CodeToolAgent
from agent.config import RewardModelConfig
from agent.latent import ScoringContext
from agent.prm import PrmScorer
from agent.trajectory import StepNode
from codetool_kernel.errors import RewardModelError
from rm.generate_client import GenerateClient
from tests.agent.test_modes import GOOD_WORKING, PLAIN_WORKING, prm_server
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import by_step
from tests.support.reference_prm import ReferencePrm


def likes_good(candidate: str) -> float:
    return 0.9 if "GOOD" in candidate else 0.2


def _with_rm(config, url: str, **rm: Any):
    return config.model_copy(update={"rm": config.rm.model_copy(update={"url": url, **rm})})


async def _solve(config, stb_provider, stb_g1_file, policy):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    async with OpenAIStub(policy) as stub:
        return await CodeToolAgent(config(stub.base_url)).solve(query, stb_provider.toolset_for(query))


@pytest.mark.parametrize("protocol", ["auto", "generate"])
async def test_the_agent_solves_through_a_generate_only_prm(stb_provider, stb_g1_file, config_for, protocol: str):
    async with ReferencePrm(likes_good) as prm:
        trajectory = await _solve(
            lambda base: _with_rm(config_for(base, mode="codetool"), prm.url, protocol=protocol),
            stb_provider, stb_g1_file, by_step([[PLAIN_WORKING, GOOD_WORKING]]),
        )  # fmt: skip
    plain, good = trajectory.node("1-1"), trajectory.node("1-2")
    assert (plain.r_lat, good.r_lat) == (pytest.approx(0.2), pytest.approx(0.9))
    assert plain.rm_logits is None and good.rm_logits is None, "the reference contract carries no logits"
    assert trajectory.chosen_path == ["1-2"] and trajectory.final_answer == "good answer"
    assert sorted(body["index"] for body in prm.requests) == [1, 2], "one request per candidate"
    assert {body["messages"][-1]["content"] for body in prm.requests} == {plain.content, good.content}


async def test_score_protocol_refuses_a_generate_only_prm(stb_provider, stb_g1_file, config_for):
    async with ReferencePrm(likes_good) as prm:
        scorer = PrmScorer(RewardModelConfig(url=prm.url, protocol="score", retries=0))
        async with scorer:
            with pytest.raises(RewardModelError, match="refused /score: HTTP 404"):
                await scorer.score(_context(2))
    assert prm.requests == []


async def test_auto_keeps_our_batched_score_with_our_server(stb_provider, stb_g1_file, config_for):
    async with prm_server() as (url, judge_stub):
        scorer = PrmScorer(RewardModelConfig(url=url, protocol="auto"))
        async with scorer:
            scores = await scorer.score(_context(2))
            assert scorer.protocol == "score"
    assert len(scores) == 2 and all(score.logits is not None for score in scores)


async def test_generate_requests_are_bounded_and_all_answered():
    async with ReferencePrm(likes_good, hold=True) as prm:
        async with GenerateClient(prm.url, max_concurrency=2) as client:
            job = asyncio.create_task(client.score([_conversation(f"c{i}") for i in range(5)]))
            await prm.wait_for_arrivals(2)
            assert prm.in_flight == 2 and len(prm.requests) == 2, "the third waits for a free slot"
            prm.released.set()
            results = await job
    assert [result.score for result in results] == [0.2] * 5
    assert prm.most_in_flight == 2 and sorted(body["index"] for body in prm.requests) == [1, 2, 3, 4, 5]


async def test_an_unreadable_generate_answer_is_a_prm_error():
    async with ReferencePrm(lambda _: "not a number") as prm:  # type: ignore[arg-type,return-value]
        async with GenerateClient(prm.url, retries=0) as client:
            with pytest.raises(RewardModelError, match="unreadable /generate body"):
                await client.score([_conversation("x")])


def _conversation(candidate: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "judge"}, {"role": "user", "content": candidate}]


def _context(count: int) -> ScoringContext:
    nodes = [
        StepNode(path=f"1-{i}", depth=1, index=i, completion="", content=f"##Step 1: candidate {i}\n")
        for i in range(1, count + 1)
    ]
    return ScoringContext("API docs", "a query", (), tuple(nodes))
