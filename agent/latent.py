"""The latent-reward seam: how the step loop asks a process reward model about candidates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.trajectory import StepNode
from rm.scores import ScoreResult

LatentScore = ScoreResult
"""r_lat of one candidate in [0, 1], with the (yes, no) logits behind it when the scorer has them
(`LatentScore(0.9)`, `LatentScore.from_logits(2.1, -0.4)`); building one checks the numbers, so a
scorer's NaN or 7.5 is a `RewardModelError`, never a reward."""


@dataclass(frozen=True)
class ScoringContext:
    """What a PRM sees: the tool docs, the query, the chosen steps so far, the candidates."""

    api_docs: str
    query: str
    previous: Sequence[StepNode]
    candidates: Sequence[StepNode]


class LatentScorer(Protocol):
    """Scores all candidates of one step (in one request, where the scorer can)."""

    async def score(self, context: ScoringContext) -> list[LatentScore]: ...

    async def aclose(self) -> None: ...
