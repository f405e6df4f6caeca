"""Two runs side by side, group by group: SoPR (when judged), SCEP, path rate, steps and tokens."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from codetool_kernel.errors import DataError
from codetool_kernel.files import read_json
from evaluation.rundata import RunData
from evaluation.scep import scep_of
from evaluation.sopr import SOPR_FILE
from evaluation.tables import MetricTable, percent
from evaluation.tmdb_path import tmdb_path_of

COMPARED = ("queries", "finished %", "SoPR", "SCEP", "path rate", "steps/query", "tokens/query")


def read_sopr(run: RunData) -> dict[str, Any] | None:
    """The run's saved SoPR result, if it was judged."""
    path = run.eval_dir / f"{SOPR_FILE}.json"
    if not path.exists():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or "groups" not in data:
        raise DataError(f"{path}: not a SoPR result")
    return data


def group_figures(run: RunData) -> dict[str, dict[str, float | None]]:
    """The compared figures of each group of `run`, plus `average` (mean over groups)."""
    sopr = read_sopr(run)
    scep = scep_of(run)
    figures: dict[str, dict[str, float | None]] = {}
    for group, results in run.by_group().items():
        finished = [r.trajectory for r in results if r.trajectory is not None]
        is_tmdb = any(r.gold_solution for r in results)
        path = tmdb_path_of(RunData(run.root, run.manifest, results), None) if is_tmdb else None
        figures[group] = {
            "queries": len(results),
            "finished %": 100 * len(finished) / len(results) if results else None,
            "SoPR": sopr["groups"][group]["sopr"] if sopr and group in sopr["groups"] else None,
            "SCEP": scep["groups"][group]["scep"],
            "path rate": path["path_rate"] if path else None,
            "steps/query": statistics.fmean(len(t.chosen_path) for t in finished) if finished else None,
            "tokens/query": statistics.fmean(t.usage.get("total_tokens", 0) for t in finished) if finished else None,
        }
    return figures


def compare_runs(run_a: RunData, run_b: RunData) -> tuple[dict[str, Any], MetricTable]:
    figures_a, figures_b = group_figures(run_a), group_figures(run_b)
    groups = list(dict.fromkeys([*figures_a, *figures_b]))
    table = MetricTable(f"{run_a.root.name} (A) vs {run_b.root.name} (B)", ["group", "figure", "A", "B", "B - A"])
    rows = []
    for group in groups:
        for figure in COMPARED:
            a = figures_a.get(group, {}).get(figure)
            b = figures_b.get(group, {}).get(figure)
            if a is None and b is None:
                continue
            delta = b - a if a is not None and b is not None else None
            rows.append({"group": group, "figure": figure, "a": a, "b": b, "delta": delta})
            table.add(group, figure, percent(a), percent(b), percent(delta))
    result = {
        "metric": "compare",
        "a": {"run": str(run_a.root), "model": run_a.model},
        "b": {"run": str(run_b.root), "model": run_b.model},
        "rows": rows,
    }
    return result, table


def default_output(run_a: RunData, run_b: RunData) -> tuple[Path, str]:
    return run_a.eval_dir, f"compare_{run_b.root.name}"
