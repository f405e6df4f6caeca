"""`tree`: expand every node to its leaves (process-data collection, and an exhaustive search)."""

from __future__ import annotations

from agent.search import Path, register_search_strategy
from agent.strategies.beam import BeamSearch


@register_search_strategy("tree")
class FullTree(BeamSearch):
    """Beam search without a width limit: all n^depth paths are grown, level after level.

    Judged, it answers with the best complete path, as beam search does; unjudged (`agent collect`),
    it only grows the tree.
    """

    def keep(self, open_paths: list[Path]) -> list[Path]:
        return open_paths
