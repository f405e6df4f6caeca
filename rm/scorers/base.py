"""The `Scorer` interface every PRM backend implements, and the registry that names them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from codetool_kernel.errors import RewardModelError
from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.registry import Registry
from rm.config import ScorerConfig
from rm.scores import Conversation, ScoreResult


class Scorer(AsyncLifecycle, ABC):
    """Scores candidate steps, each given as the chat messages of `rm.prompt.build_prm_messages`.

    Use as `async with create_scorer(name, config) as scorer:`; `start` loads the model or opens the
    connection, `aclose` always releases it.
    """

    name: str = ""

    def __init__(self, config: ScorerConfig) -> None:
        self.config = config
        self._requests = 0
        self._items = 0

    async def start(self) -> None:
        """Load the model or connect; called once before the first `score`."""

    async def aclose(self) -> None:
        """Release everything `start` acquired; safe to call twice."""

    async def score(self, batch: Sequence[Conversation]) -> list[ScoreResult]:
        """One `ScoreResult` per conversation, in order."""
        if not batch:
            return []
        self._requests += 1
        self._items += len(batch)
        return await self._score(list(batch))

    @abstractmethod
    async def _score(self, batch: list[Conversation]) -> list[ScoreResult]: ...

    def counters(self) -> dict[str, int]:
        """Observability counters (requests and items so far, plus backend-specific ones)."""
        return {"requests": self._requests, "items": self._items}


SCORERS: Registry[type[Scorer]] = Registry("scorer backend", group="codetool.scorers")
register_scorer = SCORERS.register


def scorer_names() -> list[str]:
    """Names of the registered backends."""
    return SCORERS.names()


def create_scorer(name: str, config: ScorerConfig) -> Scorer:
    """A not-yet-started scorer of backend `name`."""
    return SCORERS.get(name)(config)


def missing_extra(extra: str, exc: ImportError) -> RewardModelError:
    """The one-line error for a backend whose optional dependencies are not installed."""
    return RewardModelError(f"this backend needs {exc.name or 'an optional package'}: pip install 'codetool[{extra}]'")
