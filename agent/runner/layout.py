"""Where a run keeps its files, and how they are written so that a kill never leaves half a file.

RUN_DIR/
  run.json                    the run's manifest (configuration, versions, queries, status)
  audit.sqlite                the execution audit log (written by the sandbox layer)
  trajectories/{query_id}.json  one per finished query, written once when it finishes
  failures/{query_id}.json    the last failure of a query that has no trajectory yet
  eval/                       answers, judgements, metrics and reports (`python -m evaluation`)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.trajectory import Trajectory
from codetool_kernel.errors import DataError
from codetool_kernel.files import read_json, read_model, write_json_atomic
from sandbox.audit_store import AUDIT_DB_NAME

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def audit_path(run_dir: Path) -> Path:
    """The run's execution audit database."""
    return run_dir / AUDIT_DB_NAME


def check_query_id(query_id: str) -> str:
    """`query_id` if it can name a file, else a `DataError`."""
    if not _SAFE_ID.fullmatch(query_id) or ".." in query_id:
        raise DataError(f"query id {query_id!r} cannot name a trajectory file (letters, digits, . _ - only)")
    return query_id


def load_trajectory(path: Path) -> Trajectory:
    """Read a trajectory file; a missing, truncated or foreign file is one `DataError` line."""
    return read_model(path, Trajectory, what="a trajectory")


@dataclass
class Scan:
    """What a run directory already holds for a set of queries."""

    finished: dict[str, Trajectory] = field(default_factory=dict)
    corrupt: dict[str, str] = field(default_factory=dict)
    """Query id -> why its trajectory file cannot be read (the query is redone)."""


class RunLayout:
    """The paths of one run directory and the only code that writes query results into it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.trajectories = self.root / "trajectories"
        self.failures = self.root / "failures"
        self.eval_dir = self.root / "eval"
        self.manifest = self.root / "run.json"
        self.audit = audit_path(self.root)

    def trajectory_path(self, query_id: str) -> Path:
        return self.trajectories / f"{check_query_id(query_id)}.json"

    def failure_path(self, query_id: str) -> Path:
        return self.failures / f"{check_query_id(query_id)}.json"

    def prepare(self) -> None:
        """Create the folders and remove temporary files a killed writer left behind."""
        for folder in (self.trajectories, self.failures):
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)

    def scan(self, query_ids: list[str]) -> Scan:
        """Which of `query_ids` are finished (their trajectory file reads back) and which files are corrupt."""
        scan = Scan()
        for query_id in query_ids:
            path = self.trajectory_path(query_id)
            if not path.exists():
                continue
            try:
                scan.finished[query_id] = load_trajectory(path)
            except DataError as exc:
                scan.corrupt[query_id] = str(exc)
        return scan

    def write_trajectory(self, trajectory: Trajectory) -> None:
        """Write a finished query's trajectory (atomically) and forget its earlier failure."""
        write_json_atomic(self.trajectory_path(trajectory.query_id), trajectory.to_json())
        self.failure_path(trajectory.query_id).unlink(missing_ok=True)

    def write_failure(self, query_id: str, error: str, partial: Trajectory | None) -> None:
        """Record why a query failed, with what it had done; the query is retried on resume."""
        record: dict[str, Any] = {"query_id": query_id, "error": error}
        if partial is not None:
            record["partial"] = partial.to_json()
        write_json_atomic(self.failure_path(query_id), record)

    def read_failure(self, query_id: str) -> dict[str, Any]:
        data = read_json(self.failure_path(query_id))
        if not isinstance(data, dict):
            raise DataError(f"{self.failure_path(query_id)}: not a failure record")
        return data

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest.exists():
            return None
        data = read_json(self.manifest)
        if not isinstance(data, dict):
            raise DataError(f"{self.manifest}: not a run manifest")
        return data

    def write_manifest(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.manifest, data)
