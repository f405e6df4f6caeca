"""Client of a PRM that speaks the reference release's contract: `POST /generate`, one candidate each.

Request `{"index": i, "messages": [...]}`, answer `{"response": p}` with p the probability of "yes".
The candidates of a step go out concurrently, at most `max_concurrency` at once; each answer becomes
a `ScoreResult` (no logits), so the same checks apply as to `/score` answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from codetool_kernel.aio import gather_all
from codetool_kernel.errors import RewardModelError
from rm.client import RewardModelClient
from rm.schemas import GenerateResponse
from rm.scores import Conversation, ScoreResult


class GenerateClient:
    """`async with GenerateClient(url) as prm: results = await prm.score(conversations)`."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 60.0,
        retries: int = 2,
        max_concurrency: int = 8,
        backoff_s: float = 0.5,
    ) -> None:
        if max_concurrency < 1:
            raise RewardModelError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self._http = RewardModelClient(
            url, timeout_s=timeout_s, retries=retries, max_connections=max_concurrency, backoff_s=backoff_s
        )
        self._slots = asyncio.Semaphore(max_concurrency)
        self.url = self._http.url

    async def __aenter__(self) -> GenerateClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def score(self, conversations: Sequence[Conversation]) -> list[ScoreResult]:
        """One `ScoreResult` per conversation, in order; the first failure is raised once all have settled."""
        return await gather_all(
            self._one(index, conversation) for index, conversation in enumerate(conversations, start=1)
        )

    async def _one(self, index: int, conversation: Conversation) -> ScoreResult:
        async with self._slots:
            return await self._http.call(
                "POST",
                "/generate",
                {"index": index, "messages": list(conversation)},
                GenerateResponse,
                lambda answer: ScoreResult.from_probability(answer.response),
            )
