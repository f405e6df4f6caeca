"""What a PRM answers for one candidate: the yes/no logits and the probability of "yes"."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from codetool.errors import RewardModelError

Conversation = list[dict[str, str]]
"""Chat messages, each `{"role": ..., "content": ...}`, as handed to a chat template."""

MISSING_LOGPROB = -100.0
"""Log-probability given to an answer word that an endpoint left out of its top alternatives.

exp(-100) is ~4e-44: such a word carries no weight against one that was listed, and when both
are missing the score is 0.5 (no opinion) instead of a division by zero.
"""

Key = TypeVar("Key", bound=Hashable)


def two_way_softmax(yes_logit: float, no_logit: float) -> float:
    """p(yes) = exp(yes) / (exp(yes) + exp(no)), computed without overflow."""
    diff = yes_logit - no_logit
    if math.isnan(diff):
        raise RewardModelError(f"the PRM produced non-finite logits (yes={yes_logit}, no={no_logit})")
    if diff >= 0:
        return 1.0 / (1.0 + math.exp(-diff))
    odds = math.exp(diff)
    return odds / (1.0 + odds)


@dataclass(frozen=True)
class ScoreResult:
    """The latent reward of one candidate step and the two logits it was computed from.

    The logits are None where the PRM answers a probability alone (the reference's `/generate`).
    """

    score: float
    yes_logit: float | None = None
    no_logit: float | None = None

    @classmethod
    def from_logits(cls, yes_logit: float, no_logit: float) -> ScoreResult:
        return cls(two_way_softmax(yes_logit, no_logit), yes_logit, no_logit)

    @classmethod
    def from_probability(cls, score: float) -> ScoreResult:
        """A score a PRM gave without its logits."""
        return cls(score)


def score_from_top_logprobs(top: Mapping[Key, float], yes_key: Key, no_key: Key) -> ScoreResult:
    """Score from an endpoint's top alternatives for the first generated token.

    Log-probabilities differ from logits by a constant per position, so their two-way softmax is the
    same. Words absent from `top` (or reported as -inf / -9999) get `MISSING_LOGPROB`.
    """
    yes = max(top.get(yes_key, MISSING_LOGPROB), MISSING_LOGPROB)
    no = max(top.get(no_key, MISSING_LOGPROB), MISSING_LOGPROB)
    return ScoreResult.from_logits(yes, no)
