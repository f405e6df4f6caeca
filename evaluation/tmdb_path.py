"""RestBench-TMDB: correct path rate, and success rate from the SoPR judge.

A query's path is correct when its gold API sequence, normalised, appears in order (as a
subsequence) among the APIs its chosen steps actually called.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

from agent.trajectory import Trajectory
from codetool_kernel.nodepaths import STATUS_ERROR
from evaluation.rundata import RunData
from evaluation.tables import MetricTable, percent

TMDB_PATH_FILE = "tmdb_path"


def normalise_api(name: str) -> str:
    return re.sub(r"[\W_]+", "", name).casefold()


def called_apis(trajectory: Trajectory) -> list[str]:
    """The APIs the chosen path called, in order, each call once.

    A chosen step's execution replays the earlier steps that ran, so its call list starts with
    their calls again; only the calls after that prefix are the step's own.
    """
    sequence: list[str] = []
    replayed = 0
    for node in trajectory.chosen_nodes():
        if not node.code:
            continue
        own = node.api_calls[replayed:]
        sequence.extend(call.api_name for call in own if call.api_name and call.error is None)
        if node.status != STATUS_ERROR:
            replayed = len(node.api_calls)
    return sequence


def follows_gold(called: Sequence[str], gold: Sequence[str]) -> bool:
    """Whether `gold` (normalised) is a subsequence of `called` (normalised)."""
    remaining = iter(normalise_api(name) for name in called)
    return all(any(step == seen for seen in remaining) for step in (normalise_api(name) for name in gold))


def success_rates(sopr: dict[str, Any] | None, query_ids: Sequence[str]) -> tuple[float | None, dict[str, float]]:
    """The share (in percent) of `query_ids` the judge labelled Solved, averaged over rounds; per query too."""
    if not sopr:
        return None, {}
    per_query: dict[str, float] = {}
    for query_id in query_ids:
        labels = sopr.get("queries", {}).get(query_id, {}).get("labels")
        if labels:
            per_query[query_id] = statistics.fmean(label == "Solved" for label in labels)
    if len(per_query) < len(query_ids):
        return None, per_query
    return 100 * statistics.fmean(per_query.values()), per_query


def tmdb_path_of(run: RunData, sopr: dict[str, Any] | None) -> dict[str, Any]:
    queries: dict[str, Any] = {}
    for result in run.results:
        called = called_apis(result.trajectory) if result.trajectory else []
        queries[result.query_id] = {
            "group": result.group,
            "gold": list(result.gold_solution),
            "called": called,
            "correct_path": bool(result.gold_solution) and follows_gold(called, result.gold_solution),
        }
    with_gold = [qid for qid, row in queries.items() if row["gold"]]
    success, per_query = success_rates(sopr, [r.query_id for r in run.results])
    for query_id, share in per_query.items():
        queries[query_id]["solved_share"] = share
    return {
        "metric": "tmdb-path",
        "run": str(run.root),
        "model": run.model,
        "queries_with_gold": len(with_gold),
        "correct_paths": sum(queries[qid]["correct_path"] for qid in with_gold),
        "path_rate": 100 * statistics.fmean(queries[qid]["correct_path"] for qid in with_gold) if with_gold else None,
        "success_rate": success,
        "judge_model": sopr.get("judge_model") if sopr else None,
        "queries": queries,
    }


def tmdb_path_table(run: RunData, result: dict[str, Any]) -> MetricTable:
    table = MetricTable(f"TMDB paths of {run.root.name}", ["query", "correct path", "gold", "called"])
    for query_id, row in result["queries"].items():
        table.add(query_id, "yes" if row["correct_path"] else "no", " > ".join(row["gold"]), " > ".join(row["called"]))
    table.add("path rate (%)", percent(result["path_rate"]), "", "")
    table.add("success rate (%)", percent(result["success_rate"]), "", "")
    return table
