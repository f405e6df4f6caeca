"""The search over candidate steps: greedy step selection and beam search.

Both build on `StepExpander` (sample n children of a node and run them) and `StepJudge`
(score the children with the PRM where the mode uses it, then apply the selection policy),
and both return the chosen path, root first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from agent.events import CandidatesScored, StepSelected
from agent.expansion import QueryRun, StepExpander
from agent.latent import LatentScorer, ScoringContext
from agent.selection import RandomAmongRan, Selector
from agent.trajectory import StepNode
from codetool_kernel.errors import RewardModelError

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


def _extend_rewards(parent: Path, children: Sequence[StepNode]) -> None:
    base = parent[-1].cumulative_reward if parent else 0.0
    for child in children:
        child.cumulative_reward = base + child.reward


async def greedy_search(run: QueryRun, expander: StepExpander, judge: StepJudge, max_depth: int) -> Path:
    """Keep the best candidate at every step until a leaf or `max_depth`."""
    chosen: Path = []
    for _ in range(max_depth):
        candidates = await expander.expand(run, chosen)
        selector = await judge.score(run, chosen, candidates)
        best = candidates[selector.select(candidates)]
        _extend_rewards(chosen, candidates)
        best.chosen = True
        chosen.append(best)
        await run.emit(StepSelected(best, tuple(candidates)))
        if best.is_leaf:
            break
    return chosen


async def beam_search(run: QueryRun, expander: StepExpander, judge: StepJudge, width: int) -> Path:
    """Keep the `width` best partial paths by cumulative reward, expanding each by n per step.

    The answer is the best complete path: finished ones first, then by mean reward per step
    (so that long and short paths compare fairly), ties to the earlier path. Paths end at the
    expander's leaves, which include every node at `search.max_depth`.
    """

    async def grow(path: Path) -> list[Path]:
        children = await expander.expand(run, path)
        selector = await judge.score(run, path, children)
        selector.assign(children)
        _extend_rewards(path, children)
        return [[*path, child] for child in children]

    beams: list[Path] = [[]]
    complete: list[Path] = []
    while beams:
        grown = [path for group in await asyncio.gather(*(grow(path) for path in beams)) for path in group]
        complete.extend(path for path in grown if path[-1].is_leaf)
        open_paths = [path for path in grown if not path[-1].is_leaf]
        beams = sorted(open_paths, key=lambda path: -path[-1].cumulative_reward)[:width]
    best = max(complete, key=lambda path: (path[-1].finished, path[-1].cumulative_reward / len(path)))
    for depth, node in enumerate(best):
        node.chosen = True
        siblings = tuple(other for other in run.trajectory.nodes if other.parent == node.parent and other.depth == depth + 1)
        await run.emit(StepSelected(node, siblings))
    return best
