"""The latent-reward seam: how the step loop asks a process reward model about candidates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.trajectory import StepNode


@dataclass(frozen=True)
class LatentScore:
    score: float
    """r_lat in [0, 1]."""
    logits: tuple[float, float] | None = None
    """The raw (yes, no) logits behind the score, when the scorer has them."""


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
