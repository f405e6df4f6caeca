"""The openai backend against the stand-in OpenAI-compatible server (real HTTP, official client)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from codetool_kernel.errors import ConfigError, RewardModelError
from rm import MISSING_LOGPROB, EndpointConfig, RewardModelClient, ScorerConfig, create_scorer
from tests.rm.helpers import conversations, running_server
from tests.support.openai_stub import OpenAIStub, Reply


def _judge(request: dict[str, Any]) -> list[Reply]:
    """Likes candidates that call an API."""
    candidate = request["messages"][-1]["content"]
    if "requests.get" in candidate:
        return [Reply(content="yes", top_logprobs={"yes": -0.2, "no": -1.9, "Yes": -3.0})]
    return [Reply(content="no", top_logprobs={"no": -0.1, "maybe": -2.5})]


def _config(stub: OpenAIStub, **endpoint: Any) -> ScorerConfig:
    return ScorerConfig(model="prm-7b", endpoint=EndpointConfig(base_url=stub.base_url, **endpoint))


async def test_scores_come_from_the_first_tokens_top_logprobs() -> None:
    async with OpenAIStub(_judge) as stub:
        async with create_scorer("openai", _config(stub)) as scorer:
            liked, disliked = await scorer.score(conversations(2))
            counters = scorer.counters()
    assert (liked.yes_logit, liked.no_logit) == (-0.2, -1.9)
    assert liked.score == pytest.approx(math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.9)))
    assert (disliked.yes_logit, disliked.no_logit) == (MISSING_LOGPROB, -0.1) and disliked.score < 1e-40
    assert counters == {"requests": 1, "items": 2, "endpoint_calls": 2}
    assert sorted(r["messages"][-1]["content"] for r in stub.requests) == sorted(c[-1]["content"] for c in conversations(2))
    for request in stub.requests:
        assert request["model"] == "prm-7b"
        assert request["max_tokens"] == 1 and request["logprobs"] is True and request["top_logprobs"] == 20


async def test_configured_answer_words_are_the_ones_looked_up() -> None:
    async with OpenAIStub(lambda _: [Reply(content="good", top_logprobs={"good": -1.0, "bad": -1.0})]) as stub:
        config = _config(stub).model_copy(update={"answer_words": ("good", "bad")})
        async with create_scorer("openai", config) as scorer:
            (result,) = await scorer.score(conversations(1))
    assert result.score == 0.5 and result.yes_logit == -1.0


async def test_endpoint_failures_become_one_line_errors() -> None:
    async with OpenAIStub(_judge) as stub:
        async with create_scorer("openai", _config(stub, max_retries=0)) as scorer:
            stub.fail_next(500)
            with pytest.raises(RewardModelError, match="^PRM endpoint answered HTTP 500: .*scripted fault$"):
                await scorer.score(conversations(1))
            (result,) = await scorer.score(conversations(1))  # the next call is not poisoned
    assert result.yes_logit == -0.2


async def test_the_openai_clients_own_retries_absorb_a_transient_429() -> None:
    async with OpenAIStub(_judge) as stub:
        async with create_scorer("openai", _config(stub, max_retries=2)) as scorer:
            stub.fail_next(429)
            (result,) = await scorer.score(conversations(1))
    assert result.yes_logit == -0.2 and len(stub.requests) == 2


async def test_without_a_base_url_the_backend_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="base URL"):
        async with create_scorer("openai", ScorerConfig(model="prm")):
            pass


async def test_the_server_over_the_openai_backend_and_the_client_retrying_its_500() -> None:
    async with OpenAIStub(_judge) as stub:
        async with running_server("openai", _config(stub, max_retries=0)) as (url, _):
            async with RewardModelClient(url, retries=2, backoff_s=0.01) as client:
                stub.fail_next(500)  # the first /score fails upstream, the server answers 500, the client retries
                liked, disliked = await client.score(conversations(2))
                health = await client.health()
    assert liked.yes_logit == -0.2 and disliked.no_logit == -0.1
    assert health.backend == "openai" and health.counters["requests"] == 2
