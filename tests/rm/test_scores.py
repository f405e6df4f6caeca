from __future__ import annotations

import math

import pytest

from codetool_kernel.errors import RewardModelError
from rm import MISSING_LOGPROB, ScoreResult, two_way_softmax
from rm.scores import score_from_top_logprobs


@pytest.mark.parametrize(("yes", "no"), [(0.0, 0.0), (2.5, -1.0), (-3.0, 4.0), (-0.2, -1.9)])
def test_softmax_matches_the_textbook_formula(yes: float, no: float) -> None:
    assert two_way_softmax(yes, no) == pytest.approx(math.exp(yes) / (math.exp(yes) + math.exp(no)))


def test_softmax_does_not_overflow_on_extreme_logits() -> None:
    assert two_way_softmax(1000.0, -1000.0) == 1.0
    assert two_way_softmax(-1000.0, 1000.0) == 0.0
    assert two_way_softmax(5000.0, 5000.0) == 0.5


def test_nan_logits_are_an_error() -> None:
    with pytest.raises(RewardModelError, match="non-finite"):
        ScoreResult.from_logits(math.inf, math.inf)


def test_a_word_missing_from_the_top_alternatives_gets_the_floor() -> None:
    only_yes = score_from_top_logprobs({"yes": -3.0, "maybe": -0.1}, "yes", "no")
    assert only_yes.no_logit == MISSING_LOGPROB and only_yes.score > 0.999
    neither = score_from_top_logprobs({"maybe": -0.1}, "yes", "no")
    assert neither.score == 0.5
    clamped = score_from_top_logprobs({"yes": -9999.0, "no": -1.0}, "yes", "no")
    assert clamped.yes_logit == MISSING_LOGPROB
