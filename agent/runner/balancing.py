"""Spreading policy requests over several OpenAI-compatible endpoints (e.g. vLLM replicas)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import openai

from agent.config import LLMConfig
from agent.llm import LLMClient, Message
from codetool_kernel.errors import ConfigError


class BalancedLLMClient(LLMClient):
    """An `LLMClient` that sends each request to the endpoint with the fewest requests in flight.

    It is itself the client of the first endpoint and holds one client per further endpoint;
    each endpoint is bounded by `max_concurrency` on its own. Ties go round-robin.
    """

    def __init__(self, config: LLMConfig, base_urls: Sequence[str]) -> None:
        if not base_urls:
            raise ConfigError("a balanced LLM client needs at least one endpoint")
        super().__init__(config.model_copy(update={"base_url": base_urls[0]}))
        self._others = [LLMClient(config.model_copy(update={"base_url": url})) for url in base_urls[1:]]
        self._in_flight = [0] * len(base_urls)
        self._turn = itertools.count()
        self.sent = [0] * len(base_urls)
        """Requests sent to each endpoint so far."""

    async def aclose(self) -> None:
        for other in self._others:
            await other.aclose()
        await super().aclose()

    async def chat(self, messages: Sequence[Message], **params: object) -> openai.types.chat.ChatCompletion:
        start = next(self._turn) % len(self._in_flight)
        order = [(start + offset) % len(self._in_flight) for offset in range(len(self._in_flight))]
        index = min(order, key=lambda i: self._in_flight[i])
        self._in_flight[index] += 1
        self.sent[index] += 1
        try:
            if index == 0:
                return await super().chat(messages, **params)
            return await self._others[index - 1].chat(messages, **params)
        finally:
            self._in_flight[index] -= 1
