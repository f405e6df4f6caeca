"""The reward-model errors a caller (or the server) tells apart; all are `RewardModelError`s."""

from __future__ import annotations

from codetool_kernel.errors import RewardModelError


class ScoringInputError(RewardModelError):
    """A conversation cannot be scored as given (bad shape, no chat template fits, too long)."""


class ScorerOverloadedError(RewardModelError):
    """The scorer's queue is full; the same request may succeed later."""


class RouteMissingError(RewardModelError):
    """The server has no such route (HTTP 404 or 405): it speaks another contract."""

