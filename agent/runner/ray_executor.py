"""The `ray` executor: shards a run's pending queries over Ray workers that need no run directory.

The driver ships each shard its `Query` objects (no query file is read on a worker) and alone
holds the run directory: each worker sends back, on one bounded Ray queue, every query's
trajectory or failure and, in batches ahead of them, the audit records of its executions; the
driver writes them into `trajectories/`, `failures/` and `audit.sqlite` (and its JSON-lines
mirror), shows the progress and records the session. A small actor of the driver keeps the
run's error budget for every shard and tells them to stop (budget spent, or the driver
interrupted): a shard then starts no query and cancels those in flight. Tool data a provider
reads (`--spec`, `--cache`, `--tools-dir`) must be at the same path on every node, and every
node needs CodeTool installed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import structlog

from agent.config import AgentConfig
from agent.runner.driver import RunPlan
from agent.runner.engine import ShardOutcome, run_shard
from agent.runner.progress import RunProgress
from agent.runner.settings import RunSettings
from agent.trajectory import Trajectory
from codetool_kernel.errors import CodeToolError, ConfigError
from sandbox.audit import AuditLog, AuditRecord

log = structlog.get_logger(__name__)

T = TypeVar("T")

_POLL_S = 0.25
_QUEUE_ITEMS = 64
"""Messages the queue holds; a worker that gets this far ahead of the driver waits."""
AUDIT_BATCH = 16
"""Audit records a worker sends in one message, at most."""
AUDIT_FLUSH_S = 1.0
"""A record waits at most this long for its batch to fill (checked as records come)."""
_STOP_WAIT_S = 20.0
"""After an interruption, how long the driver waits for the shards to stop and send what they have."""


def shard_ids(items: Sequence[T], shards: int) -> list[list[T]]:
    """Deal `items` round-robin into at most `shards` non-empty shards."""
    count = max(1, min(shards, len(items)))
    return [list(items[start::count]) for start in range(count)]


class WorkerChannel:
    """A worker's way back to the driver: its `ResultSink` and the `AuditWriter` of its sandbox.

    Audit records are batched; a batch goes out when full, when its oldest record is
    `flush_s` old, before every result (a trajectory never arrives before the records of its
    executions) and when the shard ends. One lock keeps the messages in that order.
    """

    def __init__(self, queue: Any, *, batch: int = AUDIT_BATCH, flush_s: float = AUDIT_FLUSH_S) -> None:
        self.queue = queue
        self.batch, self.flush_s = batch, flush_s
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._oldest = 0.0

    def write_trajectory(self, trajectory: Trajectory) -> None:
        self._send(("finished", trajectory.query_id, trajectory.to_json()))

    def write_failure(self, query_id: str, error: str, partial: Trajectory | None) -> None:
        self._send(("failed", query_id, {"error": error, "partial": partial.to_json() if partial else None}))

    def open(self) -> None:
        """Nothing to open: the queue is the driver's."""

    def write(self, record: AuditRecord) -> None:
        with self._lock:
            if not self._records:
                self._oldest = time.monotonic()
            self._records.append(record.model_dump(mode="json"))
            if len(self._records) >= self.batch or time.monotonic() - self._oldest >= self.flush_s:
                self._flush()

    def close(self) -> None:
        with self._lock:
            self._flush()

    def _send(self, message: tuple[str, str, dict[str, Any]]) -> None:
        with self._lock:
            self._flush()
            self.queue.put(message)

    def _flush(self) -> None:
        records, self._records = self._records, []
        if records:
            self.queue.put(("audit", "", records))


class RunControl:
    """The Ray actor behind a run's shared error budget, which the driver can also spend at once (to stop)."""

    def __init__(self, max_failures: int | None) -> None:
        self.max_failures = max_failures
        self.failures = 0
        self.stopped = False

    def charge(self) -> int:
        self.failures += 1
        return self.failures

    def spent(self) -> bool:
        return self.stopped or (self.max_failures is not None and self.failures > self.max_failures)

    def stop(self) -> None:
        self.stopped = True


class SharedBudget:
    """A shard's handle on the driver's `RunControl` (an `agent.runner.engine.SharedBudget`)."""

    def __init__(self, control: Any) -> None:
        self.control = control

    async def charge(self) -> int:
        return int(await asyncio.wrap_future(self.control.charge.remote().future()))

    async def spent(self) -> bool:
        return bool(await asyncio.wrap_future(self.control.spent.remote().future()))


def solve_shard(payload: dict[str, Any], queue: Any, control: Any) -> dict[str, Any]:
    """What a Ray worker runs: one shard of the run, start to end, in its own event loop."""
    import ray

    settings = RunSettings.model_validate(payload["settings"])
    config = AgentConfig.model_validate(payload["config"])
    audited = config.audit_db is not None
    config = config.model_copy(update={"audit_db": None, "audit_jsonl": None})  # the driver writes them
    channel = WorkerChannel(queue)
    started = time.perf_counter()
    try:
        outcome = asyncio.run(
            run_shard(
                settings, config, payload["queries"], run_id=payload["run_id"], attempt=payload["attempt"],
                sink=channel, budget=SharedBudget(control), audit=channel if audited else None,
            )
        )  # fmt: skip
    finally:
        channel.close()
    outcome.worker.update(node=ray.get_runtime_context().get_node_id(), seconds=round(time.perf_counter() - started, 3))
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
    results = Queue(maxsize=_QUEUE_ITEMS, actor_options={"num_cpus": 0})
    control = ray.remote(num_cpus=0)(RunControl).remote(plan.settings.max_failures)
    writer = _DriverWriter(plan, progress)
    try:
        refs = {
            task.remote({**base, "queries": shard}, results, control): [query.query_id for query in shard]
            for shard in shard_ids(plan.pending, workers)
        }
        outcomes: list[ShardOutcome] = []
        waiting = list(refs)
        try:
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=_POLL_S)
                writer.drain(results)
                for ref in ready:
                    outcomes.append(_collect(ray, ref, refs[ref], writer))
            writer.drain(results)
        except KeyboardInterrupt:
            _stop(ray, control, waiting, results, writer)
            raise
    finally:
        writer.close()
        ray.kill(results.actor)
        ray.kill(control)
    return outcomes


def _stop(ray: Any, control: Any, waiting: list[Any], results: Any, writer: _DriverWriter) -> None:
    """Tell the shards to stop, keep what they send meanwhile (bounded), then cancel the stragglers."""
    control.stop.remote()
    deadline = time.monotonic() + _STOP_WAIT_S
    while waiting and time.monotonic() < deadline:
        _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=_POLL_S)
        writer.drain(results)
    for ref in waiting:
        ray.cancel(ref)
    writer.drain(results)


class _DriverWriter:
    """Writes what the workers send into the run directory and tells the progress display."""

    def __init__(self, plan: RunPlan, progress: RunProgress) -> None:
        self.plan, self.progress = plan, progress
        self.written: set[str] = set()
        self.audit: AuditLog | None = None
        if plan.config.audit_db is not None:
            self.audit = AuditLog(plan.config.audit_db, plan.config.audit_jsonl)
            self.audit.open()
        self.audit_failures = 0

    def drain(self, queue: Any) -> None:
        while not queue.empty():
            for kind, query_id, data in queue.get_nowait_batch(queue.qsize()):
                if kind == "audit":
                    self._audit(data)
                else:
                    self._write(kind, query_id, data)

    def _audit(self, records: list[dict[str, Any]]) -> None:
        if self.audit is None:
            return
        for data in records:
            try:
                self.audit.write(AuditRecord.model_validate(data))
            except (OSError, CodeToolError, ValueError) as exc:
                self.audit_failures += 1
                log.error("cannot write the execution audit log", path=str(self.audit.db_path), error=str(exc))

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

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()


def _collect(ray: Any, ref: Any, query_ids: list[str], writer: _DriverWriter) -> ShardOutcome:
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
