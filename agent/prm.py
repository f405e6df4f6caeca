"""The agent's PRM scorer: builds the judging prompts and asks a `python -m rm serve` server."""

from __future__ import annotations

from agent.config import RewardModelConfig
from agent.latent import LatentScore, ScoringContext
from codetool.errors import ConfigError
from codetool.lifecycle import AsyncLifecycle
from rm import PriorStep, RewardModelClient, build_prm_messages


class PrmScorer(AsyncLifecycle):
    """Scores all candidates of a step in one `/score` request (implements `LatentScorer`)."""

    def __init__(self, config: RewardModelConfig) -> None:
        if not config.url:
            raise ConfigError("no PRM configured: set --rm-url (or rm.url in the config file)")
        self.config = config
        self._client = RewardModelClient(
            config.url, timeout_s=config.timeout_s, retries=config.retries, max_connections=config.max_connections
        )

    async def start(self) -> None:
        await self._client.__aenter__()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def score(self, context: ScoringContext) -> list[LatentScore]:
        previous = [PriorStep(node.content, node.output) for node in context.previous]
        conversations = [
            build_prm_messages(
                api_docs=context.api_docs,
                query=context.query,
                previous=previous,
                candidate=node.content,
                output_chars=self.config.output_chars,
            )
            for node in context.candidates
        ]
        results = await self._client.score(conversations)
        return [LatentScore(result.score, (result.yes_logit, result.no_logit)) for result in results]
