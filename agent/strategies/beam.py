"""`beam`: keep the `beam_width` best partial paths by cumulative reward."""

from __future__ import annotations

from agent.expansion import QueryRun, StepExpander
from agent.search import Path, SearchStrategy, StepJudge, announce, extend_rewards, register_search_strategy
from codetool_kernel.aio import gather_all


@register_search_strategy("beam")
class BeamSearch(SearchStrategy):
    """Expand every kept path by n per step; keep the `beam_width` best open paths.

    The answer is the best complete path: finished ones first, then by mean reward per step (so
    that long and short paths compare fairly), ties to the earlier path. A path is complete at a
    leaf (`[All Finished]`, no code) or at `max_depth` steps.
    """

    def keep(self, open_paths: list[Path]) -> list[Path]:
        """The open paths grown further: the `beam_width` with the highest cumulative reward."""
        return sorted(open_paths, key=lambda path: -path[-1].cumulative_reward)[: self.config.beam_width]

    def _ends(self, path: Path) -> bool:
        return path[-1].is_leaf or len(path) >= self.config.max_depth

    async def search(self, run: QueryRun, expander: StepExpander, judge: StepJudge | None) -> Path:
        async def grow(path: Path) -> list[Path]:
            children = await expander.expand(run, path)
            if judge is not None:
                selector = await judge.score(run, path, children)
                selector.assign(children)
                extend_rewards(path, children)
            return [[*path, child] for child in children]

        beams: list[Path] = [[]]
        complete: list[Path] = []
        while beams:
            grown = [path for group in await gather_all(grow(path) for path in beams) for path in group]
            complete.extend(path for path in grown if self._ends(path))
            beams = self.keep([path for path in grown if not self._ends(path)])
        if judge is None:
            return []
        best = max(complete, key=lambda path: (path[-1].finished, path[-1].cumulative_reward / len(path)))
        await announce(run, best)
        return best
