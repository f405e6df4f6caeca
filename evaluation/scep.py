"""SCEP: the share of executed steps whose execution succeeded (status 0).

The paper's figure counts the steps of the chosen path that hold code; the share over every
sampled candidate is given beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from agent.trajectory import StepNode
from codetool_kernel.nodepaths import STATUS_OK
from evaluation.rundata import RunData
from evaluation.tables import MetricTable, percent

SCEP_FILE = "scep"


def executed_counts(nodes: Iterable[StepNode]) -> tuple[int, int]:
    """(executed, succeeded) among `nodes`: a node is executed when it holds code."""
    executed = [node for node in nodes if node.code]
    return len(executed), sum(node.status == STATUS_OK for node in executed)


def _share(succeeded: int, executed: int) -> float | None:
    return 100 * succeeded / executed if executed else None


def scep_of(run: RunData) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    totals = [0, 0, 0, 0]
    for group, results in run.by_group().items():
        counts = [0, 0, 0, 0]
        for result in results:
            if result.trajectory is None:
                continue
            chosen = executed_counts(result.trajectory.chosen_nodes())
            every = executed_counts(result.trajectory.nodes)
            for index, value in enumerate((*chosen, *every)):
                counts[index] += value
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        groups[group] = _entry(counts, queries=len(results))
    scored = [g["scep"] for g in groups.values() if g["scep"] is not None]
    return {
        "metric": "scep",
        "run": str(run.root),
        "model": run.model,
        "groups": groups,
        "average": statistics.fmean(scored) if scored else None,
        "all": _entry(totals, queries=len(run.results)),
    }


def _entry(counts: list[int], *, queries: int) -> dict[str, Any]:
    steps, succeeded, candidates, candidates_succeeded = counts
    return {
        "queries": queries,
        "steps": steps,
        "succeeded": succeeded,
        "scep": _share(succeeded, steps),
        "candidates": candidates,
        "candidates_succeeded": candidates_succeeded,
        "candidate_scep": _share(candidates_succeeded, candidates),
    }


def scep_table(run: RunData, result: dict[str, Any]) -> MetricTable:
    table = MetricTable(
        f"SCEP (%) of {run.root.name}", ["group", "queries", "steps", "succeeded", "SCEP", "SCEP (all candidates)"]
    )
    for group, row in [*result["groups"].items(), ("all", result["all"])]:
        table.add(
            group, row["queries"], row["steps"], row["succeeded"], percent(row["scep"]), percent(row["candidate_scep"])
        )
    table.add("average of groups", "", "", "", percent(result["average"]), "")
    return table
