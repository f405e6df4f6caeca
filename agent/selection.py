"""Which candidate a step keeps: the `Selector` seam and the selection rules of the paper.

| rule        | compares                       |
|-------------|--------------------------------|
| `codetool`  | r_spot + r_lat, ties to first  |
| `no-latent` | random among r_spot = 1        |
| `no-spot`   | r_lat alone, ties to first     |

How the tree is searched (greedy, beam, full tree) is a seam of its own: `agent.search`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from agent.trajectory import StepNode
from codetool_kernel.registry import Registry


class Selector(ABC):
    """Judges the scored children of one node and picks the one to keep."""

    name: ClassVar[str]
    uses_latent: ClassVar[bool] = True
    """Whether this policy needs the PRM's r_lat."""
    requires_latent: ClassVar[bool] = False
    """Whether it is meaningless without a PRM."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    @abstractmethod
    def reward(self, node: StepNode) -> float:
        """The value this policy compares (stored on the node as `reward`)."""

    def select(self, candidates: Sequence[StepNode]) -> int:
        """Index of the kept candidate: the highest reward, ties to the first."""
        rewards = self.assign(candidates)
        return max(range(len(candidates)), key=lambda i: (rewards[i], -i))

    def assign(self, candidates: Sequence[StepNode]) -> list[float]:
        """Compute and store every candidate's reward."""
        rewards = [self.reward(node) for node in candidates]
        for node, value in zip(candidates, rewards):
            node.reward = value
        return rewards


SELECTORS: Registry[type[Selector]] = Registry("selection rule", group="codetool.selectors")
register_selector = SELECTORS.register


@register_selector("codetool")
class RewardSum(Selector):
    """r_spot + r_lat (r_lat counts 0 when no PRM is configured)."""

    def reward(self, node: StepNode) -> float:
        return node.r_spot + (node.r_lat or 0.0)


@register_selector("no-latent")
class RandomAmongRan(Selector):
    """Ablation without latent reward: a random candidate among those that ran (any if none did)."""

    uses_latent = False

    def reward(self, node: StepNode) -> float:
        return node.r_spot

    def select(self, candidates: Sequence[StepNode]) -> int:
        rewards = self.assign(candidates)
        ran = [i for i, value in enumerate(rewards) if value >= 1.0]
        return self.rng.choice(ran or list(range(len(candidates))))


@register_selector("no-spot")
class LatentOnly(Selector):
    """Ablation without on-the-spot reward: r_lat alone."""

    requires_latent = True

    def reward(self, node: StepNode) -> float:
        return node.r_lat or 0.0


def selection_modes() -> list[str]:
    """Names of the registered selection rules."""
    return SELECTORS.names()


def selector_class(mode: str) -> type[Selector]:
    return SELECTORS.get(mode)


def create_selector(mode: str, seed: int | str = 0) -> Selector:
    """The selector of `mode`, its randomness seeded (use a per-query seed for reproducible runs)."""
    return selector_class(mode)(random.Random(str(seed)))
