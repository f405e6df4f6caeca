"""What a PRM answers for one candidate: the yes/no logits and the probability of "yes"."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from codetool_kernel.errors import RewardModelError

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


def check_score(value: object, *, source: str = "the PRM") -> float:
    """`value` if it is a probability (a finite number in [0, 1]), else a `RewardModelError` saying what it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RewardModelError(f"{source} gave a score that is not a number ({value!r})")
    if not math.isfinite(value):
        raise RewardModelError(f"{source} gave a non-finite score ({value})")
    if not 0.0 <= value <= 1.0:
        raise RewardModelError(f"{source} gave a score outside [0, 1] ({value})")
    return float(value)


def check_logit(value: object, *, source: str = "the PRM") -> float:
    """`value` if it is a finite number, else a `RewardModelError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RewardModelError(f"{source} gave a logit that is not a finite number ({value!r})")
    return float(value)


@dataclass(frozen=True)
class ScoreResult:
    """The latent reward of one candidate step and the two logits it was computed from (when known).

    The logits are None where the PRM answers a probability alone (the reference's `/generate`).

    Every PRM answer, whatever the backend or wire contract, becomes one of these: constructing it
    checks that the score is a probability and the logits are finite, so that a PRM fault is
    raised as a `RewardModelError` where the number enters and never becomes a reward.
    """

    score: float
    yes_logit: float | None = None
    no_logit: float | None = None

    def __post_init__(self) -> None:
        check_score(self.score)
        for logit in (self.yes_logit, self.no_logit):
            if logit is not None:
                check_logit(logit)

    @property
    def logits(self) -> tuple[float, float] | None:
        """`(yes, no)`, or None when the PRM answered only the probability."""
        if self.yes_logit is None or self.no_logit is None:
            return None
        return (self.yes_logit, self.no_logit)

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
