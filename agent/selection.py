"""Which candidate a step keeps: the `Selector` seam and its registry of modes."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

from agent.trajectory import StepNode
from codetool.errors import ConfigError


class Selector(ABC):
    """Picks the candidate to keep among the scored children of one node."""

    name: ClassVar[str]
    uses_latent: ClassVar[bool] = True
    """Whether this policy needs the PRM's r_lat."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    @abstractmethod
    def reward(self, node: StepNode) -> float:
        """The value this policy compares (stored on the node)."""

    def select(self, candidates: Sequence[StepNode]) -> int:
        """Index of the kept candidate: the highest reward, ties to the first."""
        rewards = [self.reward(node) for node in candidates]
        for node, value in zip(candidates, rewards):
            node.reward = value
        return max(range(len(candidates)), key=lambda i: (rewards[i], -i))


_SELECTORS: dict[str, type[Selector]] = {}


def register_selector(name: str) -> Callable[[type[Selector]], type[Selector]]:
    def decorate(cls: type[Selector]) -> type[Selector]:
        cls.name = name
        _SELECTORS[name] = cls
        return cls

    return decorate


@register_selector("codetool")
class RewardSum(Selector):
    """r_spot + r_lat (r_lat counts 0 when no PRM is configured)."""

    def reward(self, node: StepNode) -> float:
        return node.r_spot + (node.r_lat or 0.0)


def selection_modes() -> list[str]:
    return sorted(_SELECTORS)


def create_selector(mode: str, seed: int = 0) -> Selector:
    try:
        cls = _SELECTORS[mode]
    except KeyError:
        raise ConfigError(f"unknown selection mode {mode!r}; choose one of {', '.join(selection_modes())}") from None
    return cls(random.Random(seed))
