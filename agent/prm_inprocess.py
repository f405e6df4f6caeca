"""A PRM run in this process (`--rm-model PATH`): the scorer backends of `rm serve`, without the server."""

from __future__ import annotations

from pydantic import ValidationError

from agent.config import RewardModelConfig
from agent.latent import LatentScore, ScoringContext
from agent.prm import prm_conversations
from codetool_kernel.errors import ConfigError
from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.validation import describe_validation_error
from rm import ScorerConfig, create_scorer


class InProcessPrmScorer(AsyncLifecycle):
    """Scores all candidates of a step with `rm.model` on the `rm.backend` scorer (implements `LatentScorer`).

    The prompts are those `PrmScorer` sends a server; the scorer is the one `rm serve` runs
    (the `hf` backend batches concurrent steps into shared forward passes on its own thread).
    """

    def __init__(self, config: RewardModelConfig) -> None:
        if not config.model:
            raise ConfigError("no in-process PRM configured: set --rm-model (or rm.model in the config file)")
        self.config = config
        try:
            settings = ScorerConfig.model_validate({**config.scorer_options, "model": config.model})
        except ValidationError as exc:
            raise ConfigError(f"invalid rm.scorer_options {describe_validation_error(exc)}") from None
        self._scorer = create_scorer(config.backend, settings)

    async def start(self) -> None:
        await self._scorer.start()

    async def aclose(self) -> None:
        await self._scorer.aclose()

    async def score(self, context: ScoringContext) -> list[LatentScore]:
        return await self._scorer.score(prm_conversations(context, self.config.output_chars))
