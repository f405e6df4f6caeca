"""The `ray` executor: shards a run's pending queries over Ray workers.

Each worker runs the same async runner (`run_shard`) over its share and writes into the same
run directory, so every node must see RUN_DIR at the same path (a shared file system) and have
CodeTool installed. The driver watches the directory for finished queries to show progress.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.runner.driver import RunPlan
from agent.runner.engine import ShardOutcome, run_shard
from agent.runner.layout import load_trajectory
from agent.runner.progress import RunProgress
from agent.runner.settings import RunSettings
from codetool.errors import ConfigError, DataError

_POLL_S = 1.0


def shard_ids(query_ids: list[str], shards: int) -> list[list[str]]:
    """Deal `query_ids` round-robin into at most `shards` non-empty shards."""
    count = max(1, min(shards, len(query_ids)))
    return [query_ids[start::count] for start in range(count)]


def solve_shard(payload: dict[str, Any]) -> dict[str, Any]:
    """What a Ray worker runs: one shard of the run, start to end, in its own event loop."""
    settings = RunSettings.model_validate(payload["settings"])
    config = AgentConfig.model_validate(payload["config"])
    outcome = asyncio.run(run_shard(settings, config, payload["query_ids"], run_id=payload["run_id"]))
    return outcome.as_dict()


def run_on_ray(plan: RunPlan, progress: RunProgress) -> list[ShardOutcome]:
    """Run `plan` on Ray (joining `settings.address`, or a local instance) and wait for every shard."""
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError("--executor ray needs Ray: pip install 'codetool[ray]'") from None
    if not plan.pending:
        return []
    if not ray.is_initialized():
        ray.init(address=plan.settings.address, include_dashboard=False, log_to_driver=False)
    workers = plan.settings.workers or int(ray.cluster_resources().get("CPU", 1))
    task = ray.remote(num_cpus=1, max_retries=0)(solve_shard)
    base = {
        "settings": plan.settings.model_dump(mode="json"),
        "config": plan.config.model_dump(mode="json"),
        "run_id": plan.run_id,
    }
    shards = shard_ids(plan.pending, workers)
    refs = {task.remote({**base, "query_ids": ids}): ids for ids in shards}
    watcher = _Watcher(plan, progress)
    outcomes: list[ShardOutcome] = []
    waiting = list(refs)
    try:
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=_POLL_S)
            for ref in ready:
                outcomes.append(_collect(ray, ref, refs[ref], plan))
            watcher.poll()
    except KeyboardInterrupt:
        for ref in waiting:
            ray.cancel(ref)
        raise
    watcher.poll()
    for outcome in outcomes:
        for query_id, error in outcome.failed.items():
            if query_id not in watcher.failed_seen:
                progress.failed(query_id, error)
    return outcomes


def _collect(ray: Any, ref: Any, query_ids: list[str], plan: RunPlan) -> ShardOutcome:
    try:
        return ShardOutcome(**ray.get(ref))
    except ray.exceptions.RayError as exc:
        message = f"Ray worker failed: {str(exc).strip().splitlines()[-1][:300]}"
        outcome = ShardOutcome(aborted=True)
        for query_id in query_ids:
            if not plan.layout.trajectory_path(query_id).exists():
                plan.layout.write_failure(query_id, message, None)
                outcome.failed[query_id] = message
        return outcome


class _Watcher:
    """Feeds the progress display with the trajectories and failures workers write."""

    def __init__(self, plan: RunPlan, progress: RunProgress) -> None:
        self.plan, self.progress = plan, progress
        self.waiting = set(plan.pending)
        self.failed_seen: set[str] = set()
        self._old_failures = {query_id: _mtime(plan.layout.failure_path(query_id)) for query_id in plan.pending}

    def poll(self) -> None:
        layout = self.plan.layout
        for query_id in sorted(self.waiting):
            path = layout.trajectory_path(query_id)
            if path.exists():
                try:
                    trajectory = load_trajectory(path)
                except DataError:
                    continue
                self.waiting.discard(query_id)
                self.progress.finished(trajectory)
                continue
            if query_id in self.failed_seen:
                continue
            failure = layout.failure_path(query_id)
            mtime = _mtime(failure)
            if mtime is not None and mtime != self._old_failures[query_id]:
                self.failed_seen.add(query_id)
                try:
                    error = str(layout.read_failure(query_id).get("error") or "failed")
                except DataError as exc:
                    error = str(exc)
                self.progress.failed(query_id, error)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
