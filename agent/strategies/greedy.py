"""`greedy`: keep the best candidate at every step."""

from __future__ import annotations

from agent.events import StepSelected
from agent.expansion import QueryRun, StepExpander
from agent.search import Path, SearchStrategy, StepJudge, extend_rewards, register_search_strategy
from codetool_kernel.errors import ConfigError


@register_search_strategy("greedy")
class GreedySearch(SearchStrategy):
    """Sample n candidates, keep the one the selection rule picks, until a leaf or `max_depth`."""

    async def search(self, run: QueryRun, expander: StepExpander, judge: StepJudge | None) -> Path:
        if judge is None:
            raise ConfigError("the greedy search strategy needs a selection rule to follow")
        chosen: Path = []
        for _ in range(self.config.max_depth):
            candidates = await expander.expand(run, chosen)
            selector = await judge.score(run, chosen, candidates)
            best = candidates[selector.select(candidates)]
            extend_rewards(chosen, candidates)
            best.chosen = True
            chosen.append(best)
            await run.emit(StepSelected(best, tuple(candidates)))
            if best.is_leaf:
                break
        return chosen
