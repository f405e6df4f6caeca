"""A run directory as the metrics see it: every query of the run, with its trajectory when it has one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from agent.runner import RunLayout, load_trajectory
from agent.trajectory import Trajectory
from codetool_kernel.errors import DataError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class QueryResult:
    """One query of a run; `trajectory` is None when it failed, was never run, or its file is corrupt."""

    query_id: str
    group: str
    gold_solution: tuple[str, ...] = ()
    trajectory: Trajectory | None = None
    problem: str | None = None


@dataclass
class RunData:
    """A run's manifest and its queries, in the manifest's order."""

    root: Path
    manifest: dict[str, Any]
    results: list[QueryResult] = field(default_factory=list)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.root)

    @property
    def eval_dir(self) -> Path:
        return self.layout.eval_dir

    @property
    def model(self) -> str:
        return str(self.manifest.get("config", {}).get("llm", {}).get("model", ""))

    @property
    def benchmark(self) -> str:
        return str(self.manifest.get("benchmark", ""))

    def groups(self) -> list[str]:
        return list(dict.fromkeys(result.group for result in self.results))

    def by_group(self) -> dict[str, list[QueryResult]]:
        grouped: dict[str, list[QueryResult]] = {group: [] for group in self.groups()}
        for result in self.results:
            grouped[result.group].append(result)
        return grouped

    def trajectories(self) -> Iterator[tuple[QueryResult, Trajectory]]:
        for result in self.results:
            if result.trajectory is not None:
                yield result, result.trajectory


def load_run(run_dir: Path) -> RunData:
    """Read `run_dir` (written by `python -m agent run`); corrupt trajectories count as missing."""
    layout = RunLayout(Path(run_dir))
    manifest = layout.read_manifest()
    if manifest is None:
        raise DataError(f"{run_dir}: no run.json here; give a directory written by `python -m agent run`")
    entries = manifest.get("queries")
    if not isinstance(entries, list):
        raise DataError(f"{layout.manifest}: no query list")
    run = RunData(Path(run_dir), manifest)
    for entry in entries:
        query_id = str(entry["query_id"])
        trajectory, problem = None, None
        path = layout.trajectory_path(query_id)
        if path.exists():
            try:
                trajectory = load_trajectory(path)
            except DataError as exc:
                problem = f"corrupt trajectory: {exc}"
                log.warning("unreadable trajectory counts as missing", query_id=query_id, reason=str(exc))
        elif layout.failure_path(query_id).exists():
            try:
                problem = "failed: " + str(layout.read_failure(query_id).get("error", ""))
            except DataError as exc:
                problem = f"failed ({exc})"
        else:
            problem = "not run"
        run.results.append(
            QueryResult(
                query_id=query_id,
                group=str(entry.get("group") or run.benchmark),
                gold_solution=tuple(entry.get("gold_solution") or ()),
                trajectory=trajectory,
                problem=problem,
            )
        )
    return run
