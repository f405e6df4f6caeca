"""The agent's PRM scorers: the judging prompts, and a PRM server asked in the contract it speaks.

Two contracts: ours (`POST /score`, every candidate of a step in one request, served by
`python -m rm serve`) and the reference release's (`POST /generate`, one candidate per request,
`{"response": p}`; `rm serve` answers it too). `rm.protocol` picks one; `auto` starts with `/score`
and turns to `/generate` for good when the server says it has no `/score` route.
"""

from __future__ import annotations

import structlog

from agent.config import RewardModelConfig
from agent.latent import LatentScore, LatentScorer, ScoringContext
from codetool_kernel.errors import ConfigError
from codetool_kernel.lifecycle import AsyncLifecycle
from rm import PriorStep, RewardModelClient, build_prm_messages
from rm.errors import RouteMissingError
from rm.generate_client import GenerateClient
from rm.scores import Conversation, ScoreResult

log = structlog.get_logger(__name__)


def prm_conversations(context: ScoringContext, output_chars: int) -> list[Conversation]:
    """The PRM's judging prompt for each candidate of `context` (the same for every way of reaching a PRM)."""
    previous = [PriorStep(node.content, node.output) for node in context.previous]
    return [
        build_prm_messages(
            api_docs=context.api_docs,
            query=context.query,
            previous=previous,
            candidate=node.content,
            output_chars=output_chars,
        )
        for node in context.candidates
    ]


def create_latent_scorer(config: RewardModelConfig) -> LatentScorer:
    """The scorer `config` names, not started: a PRM server at `rm.url`, or `rm.model` run in this process."""
    if config.url and config.model:
        raise ConfigError("set either --rm-url (a PRM server) or --rm-model (a PRM in this process), not both")
    if config.model:
        from agent.prm_inprocess import InProcessPrmScorer

        return InProcessPrmScorer(config)
    return PrmScorer(config)


class PrmScorer(AsyncLifecycle):
    """Scores all candidates of a step with a PRM server (implements `LatentScorer`)."""

    def __init__(self, config: RewardModelConfig) -> None:
        if not config.url:
            raise ConfigError("no PRM configured: set --rm-url (or rm.url in the config file)")
        self.config = config
        self.protocol = config.protocol
        """The contract in use; `auto` until the server has shown which it speaks."""
        self._batched = RewardModelClient(
            config.url, timeout_s=config.timeout_s, retries=config.retries, max_connections=config.max_connections
        )
        self._single = GenerateClient(
            config.url, timeout_s=config.timeout_s, retries=config.retries, max_concurrency=config.max_connections
        )

    async def start(self) -> None:
        await self._batched.__aenter__()
        await self._single.__aenter__()

    async def aclose(self) -> None:
        await self._batched.aclose()
        await self._single.aclose()

    async def score(self, context: ScoringContext) -> list[LatentScore]:
        results = await self._ask(prm_conversations(context, self.config.output_chars))
        return results

    async def _ask(self, conversations: list[Conversation]) -> list[ScoreResult]:
        if self.protocol == "generate":
            return await self._single.score(conversations)
        try:
            results = await self._batched.score(conversations)
        except RouteMissingError:
            if self.protocol != "auto":
                raise
            log.info("the PRM has no /score: using its /generate", url=self.config.url)
            self.protocol = "generate"
            return await self._single.score(conversations)
        self.protocol = "score"
        return results

