"""The search over candidate steps: the `SearchStrategy` seam, and `StepJudge`, which scores and ranks.

A strategy grows the step tree of one query with a `StepExpander` (sample n children of a node and
run them) and a `StepJudge` (score the children with the PRM where the selection rule uses it, then
apply the rule), and returns the chosen path, root first. Strategies are registered by name
(`register_search_strategy`); the built-ins are `greedy`, `beam` and `tree`, each in its own module
of `agent.strategies`. Selection rules are a seam of their own (`agent.selection`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from agent.config import SearchConfig
from agent.events import CandidatesScored, StepSelected
from agent.expansion import QueryRun, StepExpander
from agent.latent import LatentScorer, ScoringContext
from agent.selection import RandomAmongRan, Selector, selector_class
from agent.trajectory import StepNode
from codetool_kernel.errors import RewardModelError
from codetool_kernel.registry import Registry

Path = list[StepNode]


class StepJudge:
    """Scores a node's children and says which selection policy applies to them."""

    def __init__(self, selector: Selector, scorer: LatentScorer | None, *, fallback_to_no_latent: bool) -> None:
        self.selector = selector
        self.scorer = scorer if selector.uses_latent else None
        self.fallback = RandomAmongRan(selector.rng) if fallback_to_no_latent else None

    async def score(self, run: QueryRun, parents: Sequence[StepNode], children: Sequence[StepNode]) -> Selector:
        """Set r_lat on `children`; return the selector to apply (no-latent after a PRM failure, if allowed)."""
        if self.scorer is None:
            return self.selector
        started = time.perf_counter()
        try:
            scores = await self.scorer.score(
                ScoringContext(run.toolset.docs, run.query.text, tuple(parents), tuple(children))
            )
        except RewardModelError as exc:
            if self.fallback is None:
                raise
            depth = len(parents) + 1
            note = f"PRM failed at step {depth} ({exc}); fell back to the no-latent policy"
            run.trajectory.notes.append(note)
            for child in children:
                child.notes.append("selected without r_lat: PRM unavailable")
            return self.fallback
        elapsed = time.perf_counter() - started
        for child, latent in zip(children, scores, strict=True):
            child.r_lat, child.score_s = latent.score, elapsed
            child.rm_logits = list(latent.logits) if latent.logits is not None else None
        await run.emit(CandidatesScored(len(parents) + 1, tuple(children)))
        return self.selector


class SearchStrategy(ABC):
    """How the step tree of one query grows, and which of its paths is the answer.

    Built from the `search` section of the config (`n`, `max_depth`, `beam_width`, ...). A strategy
    never grows a path beyond `max_depth` steps.
    """

    name: ClassVar[str]

    def __init__(self, config: SearchConfig) -> None:
        self.config = config

    @abstractmethod
    async def search(self, run: QueryRun, expander: StepExpander, judge: StepJudge | None) -> Path:
        """Grow `run`'s tree; the chosen path, root first (marked `chosen`, announced with `StepSelected`).

        With `judge` None the tree is grown without being judged (process-data collection): no
        rewards, no path chosen, an empty list returned; a strategy that cannot grow a tree without
        judging raises `ConfigError`.
        """


SEARCH_STRATEGIES: Registry[type[SearchStrategy]] = Registry(
    "search strategy",
    ("agent.strategies.greedy", "agent.strategies.beam", "agent.strategies.tree"),
    group="codetool.search_strategies",
)
register_search_strategy = SEARCH_STRATEGIES.register


def search_strategies() -> list[str]:
    """Names of the registered search strategies."""
    return SEARCH_STRATEGIES.names()


def create_search_strategy(name: str, config: SearchConfig) -> SearchStrategy:
    """The strategy registered as `name`, for the search settings `config`."""
    return SEARCH_STRATEGIES.get(name)(config)


def check_search(config: SearchConfig) -> SearchConfig:
    """`config` if its strategy and selection rule are registered (a `ConfigError` listing the choices otherwise)."""
    SEARCH_STRATEGIES.get(config.search_strategy)
    selector_class(config.selection_rule)
    return config


def extend_rewards(parent: Path, children: Sequence[StepNode]) -> None:
    """Set each child's cumulative reward: its parent's plus its own."""
    base = parent[-1].cumulative_reward if parent else 0.0
    for child in children:
        child.cumulative_reward = base + child.reward


async def announce(run: QueryRun, path: Path) -> None:
    """Mark `path` chosen and emit `StepSelected` for each of its steps, root first."""
    for depth, node in enumerate(path, start=1):
        node.chosen = True
        siblings = tuple(other for other in run.trajectory.nodes if other.parent == node.parent and other.depth == depth)
        await run.emit(StepSelected(node, siblings))
