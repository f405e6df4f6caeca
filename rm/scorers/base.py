"""The `Scorer` interface every PRM backend implements, and the registry that names them."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from codetool.errors import ConfigError, RewardModelError
from rm.config import ScorerConfig
from rm.scores import Conversation, ScoreResult

T = TypeVar("T")


class Scorer(ABC):
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

    async def __aenter__(self) -> Scorer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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


_REGISTRY: dict[str, type[Scorer]] = {}


def register_scorer(name: str) -> Callable[[type[Scorer]], type[Scorer]]:
    """Class decorator: make a `Scorer` subclass available to `create_scorer(name, ...)`."""

    def register(cls: type[Scorer]) -> type[Scorer]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ConfigError(f"scorer backend {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return register


def scorer_names() -> list[str]:
    """Names of the registered backends."""
    return sorted(_REGISTRY)


def create_scorer(name: str, config: ScorerConfig) -> Scorer:
    """A not-yet-started scorer of backend `name`."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown scorer backend {name!r}; known: {', '.join(scorer_names())}") from None
    return cls(config)


async def gather_all(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Await every job; if any failed, raise the first failure once all are settled."""
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    return settled(outcomes)


def settled(outcomes: Sequence[T | BaseException]) -> list[T]:
    """The values of `outcomes`, or the first exception among them raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)  # type: ignore[arg-type]


def missing_extra(extra: str, exc: ImportError) -> RewardModelError:
    """The one-line error for a backend whose optional dependencies are not installed."""
    return RewardModelError(f"this backend needs {exc.name or 'an optional package'}: pip install 'codetool[{extra}]'")
