"""The `openai` backend: any OpenAI-compatible server of the PRM (e.g. `vllm serve PRM`).

Each candidate is one chat completion of a single token with its top alternatives; the yes/no
words are looked up among them (see `rm.scores.score_from_top_logprobs`).
"""

from __future__ import annotations

import asyncio

import openai

from codetool_kernel.aio import gather_all
from codetool_kernel.errors import ConfigError, RewardModelError
from codetool_kernel.text import one_line
from rm.scorers.base import Scorer, register_scorer
from rm.scores import Conversation, ScoreResult, score_from_top_logprobs


@register_scorer("openai")
class OpenAIEndpointScorer(Scorer):
    """Asks `config.endpoint.base_url` for the first token's logprobs, at most `max_concurrency` at once."""

    _client: openai.AsyncOpenAI | None = None
    _calls = 0

    async def start(self) -> None:
        endpoint = self.config.endpoint
        if not endpoint.base_url:
            raise ConfigError("the openai backend needs the endpoint's base URL (--base-url)")
        self._limit = asyncio.Semaphore(endpoint.max_concurrency)
        self._client = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            timeout=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def _score(self, batch: list[Conversation]) -> list[ScoreResult]:
        return await gather_all(self._score_one(conversation) for conversation in batch)

    async def _score_one(self, conversation: Conversation) -> ScoreResult:
        if self._client is None:
            raise RewardModelError("the openai scorer is not started")
        async with self._limit:
            self._calls += 1
            try:
                completion = await self._client.chat.completions.create(
                    model=self.config.model,
                    messages=conversation,  # type: ignore[arg-type]
                    max_tokens=1,
                    temperature=0.0,
                    logprobs=True,
                    top_logprobs=self.config.top_logprobs,
                )
            except openai.APIStatusError as exc:
                raise RewardModelError(f"PRM endpoint answered HTTP {exc.status_code}: {one_line(exc)}") from None
            except openai.APIError as exc:
                raise RewardModelError(f"PRM endpoint {self.config.endpoint.base_url} failed: {one_line(exc)}") from None
        choice = completion.choices[0] if completion.choices else None
        if choice is None or choice.logprobs is None or not choice.logprobs.content:
            raise RewardModelError("PRM endpoint returned no logprobs; does it support logprobs/top_logprobs?")
        top: dict[str, float] = {}
        for alternative in choice.logprobs.content[0].top_logprobs:
            # Two token ids may decode to the same text; the likelier one stands for the word.
            top[alternative.token] = max(alternative.logprob, top.get(alternative.token, alternative.logprob))
        yes, no = self.config.answer_words
        return score_from_top_logprobs(top, yes, no)

    def counters(self) -> dict[str, int]:
        return {**super().counters(), "endpoint_calls": self._calls}
