"""The `ray` executor: shards a run's pending queries over Ray workers.

Each worker runs the same async runner (`run_shard`) over its share, but writes no result
itself: its trajectories and failures travel back to the driver on a Ray queue, and the driver,
which holds the run directory's lock, writes them (and shows progress). Workers do record their
executions in the run's audit database (SQLite takes several writers), so RUN_DIR must be on a
shared file system at the same path on every node; every node needs CodeTool installed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.config import AgentConfig
from agent.runner.driver import RunPlan
from agent.runner.engine import ShardOutcome, run_shard
from agent.runner.progress import RunProgress
from agent.runner.settings import RunSettings
from agent.trajectory import Trajectory
from codetool_kernel.errors import ConfigError

_POLL_S = 0.5


def shard_ids(query_ids: list[str], shards: int) -> list[list[str]]:
    """Deal `query_ids` round-robin into at most `shards` non-empty shards."""
    count = max(1, min(shards, len(query_ids)))
    return [query_ids[start::count] for start in range(count)]


class QueueSink:
    """A worker's `ResultSink`: each result goes to the driver on a Ray queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def write_trajectory(self, trajectory: Trajectory) -> None:
        self.queue.put(("finished", trajectory.q_id, trajectory.to_json()))

    def write_failure(self, query_id: str, error: str, partial: Trajectory | None) -> None:
        self.queue.put(("failed", query_id, {"error": error, "partial": partial.to_json() if partial else None}))


def solve_shard(payload: dict[str, Any], queue: Any) -> dict[str, Any]:
    """What a Ray worker runs: one shard of the run, start to end, in its own event loop."""
    settings = RunSettings.model_validate(payload["settings"])
    config = AgentConfig.model_validate(payload["config"])
    outcome = asyncio.run(
        run_shard(
            settings, config, payload["query_ids"], run_id=payload["run_id"], attempt=payload["attempt"],
            sink=QueueSink(queue),
        )
    )  # fmt: skip
    return outcome.as_dict()


def run_on_ray(plan: RunPlan, progress: RunProgress) -> list[ShardOutcome]:
    """Run `plan` on Ray (joining `settings.address`, or a local instance) and wait for every shard."""
    try:
        import ray
        from ray.util.queue import Queue
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
        "attempt": plan.attempt,
    }
    results = Queue()
    refs = {task.remote({**base, "query_ids": ids}, results): ids for ids in shard_ids(plan.pending, workers)}
    writer = _DriverWriter(plan, progress)
    outcomes: list[ShardOutcome] = []
    waiting = list(refs)
    try:
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=_POLL_S)
            writer.drain(results)
            for ref in ready:
                outcomes.append(_collect(ray, ref, refs[ref], plan, writer))
        writer.drain(results)
    except KeyboardInterrupt:
        for ref in waiting:
            ray.cancel(ref)
        writer.drain(results)  # what finished before the stop is kept
        raise
    finally:
        ray.kill(results.actor)
    return outcomes


class _DriverWriter:
    """Writes the results workers send into the run directory and tells the progress display."""

    def __init__(self, plan: RunPlan, progress: RunProgress) -> None:
        self.plan, self.progress = plan, progress
        self.written: set[str] = set()

    def drain(self, queue: Any) -> None:
        while not queue.empty():
            for kind, query_id, data in queue.get_nowait_batch(queue.qsize()):
                self._write(kind, query_id, data)

    def _write(self, kind: str, query_id: str, data: dict[str, Any]) -> None:
        layout = self.plan.layout
        self.written.add(query_id)
        if kind == "finished":
            trajectory = Trajectory.model_validate(data)
            layout.write_trajectory(trajectory)
            self.progress.finished(trajectory)
        else:
            partial = Trajectory.model_validate(data["partial"]) if data.get("partial") else None
            layout.write_failure(query_id, data["error"], partial)
            self.progress.failed(query_id, data["error"])

    def lost(self, query_id: str, message: str) -> None:
        """A query of a worker that died before it said anything about it."""
        self.plan.layout.write_failure(query_id, message, None)
        self.progress.failed(query_id, message)


def _collect(ray: Any, ref: Any, query_ids: list[str], plan: RunPlan, writer: _DriverWriter) -> ShardOutcome:
    try:
        return ShardOutcome(**ray.get(ref))
    except ray.exceptions.RayError as exc:
        message = f"Ray worker failed: {str(exc).strip().splitlines()[-1][:300]}"
        outcome = ShardOutcome(aborted=True)
        for query_id in query_ids:
            if query_id not in writer.written:
                writer.lost(query_id, message)
                outcome.failed[query_id] = message
        return outcome
