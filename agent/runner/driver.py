"""Running a benchmark: plan the session (resume), run it on an executor, record how it ended.

The driver holds the run directory's lock (`codetool_kernel.dirlock`) from before it reads anything
until the session is recorded in `run.json`; it is the only writer of the directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from agent.config import AgentConfig
from agent.policy import policy_model_name
from agent.runner.engine import ShardOutcome, run_shard
from agent.runner.layout import RunLayout
from agent.runner.limits import follow_concurrency, limits_line
from agent.runner.manifest import close_session, open_manifest
from agent.runner.progress import RunProgress
from agent.runner.queries import select_queries
from agent.runner.repair import check_audit, rebuild_audit, set_aside
from agent.runner.settings import RunSettings
from agent.runner.stats import RunStats
from codetool_kernel.aio import run_interruptible
from codetool_kernel.dirlock import DirectoryLock
from codetool_kernel.errors import DataError
from tools.toolset import Query


@dataclass
class RunPlan:
    """One session of a run: its settings, the queries still to solve, and the figures so far."""

    settings: RunSettings
    config: AgentConfig
    layout: RunLayout
    manifest: dict[str, Any]
    pending: list[Query]
    """The selected queries not finished yet, in order."""
    stats: RunStats
    corrupt: dict[str, str] = field(default_factory=dict)
    repaired: list[str] = field(default_factory=list)
    """What `--repair` rebuilt, one line each."""

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def attempt(self) -> int:
        """This session's number (1 for the first), recorded with each of its executions."""
        return len(self.manifest.get("sessions", []))


@dataclass
class RunResult:
    status: str
    """completed, aborted (error budget spent), interrupted or failed."""
    summary: dict[str, Any]
    shards: list[ShardOutcome]

    @property
    def cancelled(self) -> list[str]:
        return [query_id for shard in self.shards for query_id in shard.cancelled]


class RunInterrupted(KeyboardInterrupt):
    """A session stopped by SIGINT or SIGTERM; `summary` is what `run.json` recorded for it."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary


def with_audit(config: AgentConfig, layout: RunLayout) -> AgentConfig:
    """Record every execution of the run in the run's audit database."""
    return config.model_copy(update={"audit_db": str(layout.audit)})


def plan_run(
    settings: RunSettings,
    config: AgentConfig,
    *,
    repair: bool = False,
    queries: list[Query] | None = None,
    limits: dict[str, Any] | None = None,
) -> RunPlan:
    """Select the queries, open (or resume) the manifest and find what is already done.

    A corrupt `run.json` or audit database is refused with a line naming `--repair`; with
    `repair`, each is set aside and rebuilt from the trajectory files.
    """
    if queries is None:
        queries = chosen_queries(settings)
    layout = RunLayout(settings.out)
    layout.prepare()
    config = with_audit(config, layout)
    repaired: list[str] = []
    try:
        existing = layout.read_manifest()
    except DataError as exc:
        if not repair:
            raise DataError(f"{exc}; run the same command with --repair to rebuild it from the trajectories") from None
        existing = None
        repaired.append(f"{layout.manifest} was unreadable (set aside as {set_aside(layout.manifest).name}); rebuilt")
    audit_problem = check_audit(layout.audit)
    if audit_problem is not None and not repair:
        raise DataError(f"{audit_problem}; run the same command with --repair to rebuild it from the trajectories")
    manifest = open_manifest(existing, settings, config, queries)
    scan = layout.scan([query.query_id for query in queries])
    if audit_problem is not None:
        kept = set_aside(layout.audit)
        count = rebuild_audit(layout.audit, run_id=str(manifest["run_id"]), trajectories=scan.finished.values())
        repaired.append(f"{audit_problem} (set aside as {kept.name}); rebuilt with {count} executions from the trajectories")
    if limits is not None:
        manifest["limits"] = limits
    if repaired:
        manifest["repairs"] = [*manifest.get("repairs", []), *repaired]
    stats = RunStats(total=len(queries))
    for trajectory in scan.finished.values():
        stats.absorb(trajectory, earlier=True)
    pending = [query for query in queries if query.query_id not in scan.finished]
    layout.write_manifest(manifest)
    return RunPlan(settings, config, layout, manifest, pending, stats, scan.corrupt, repaired)


def chosen_queries(settings: RunSettings) -> list[Query]:
    """The queries `settings` select (a `DataError` when none)."""
    queries = select_queries(settings)
    if not queries:
        raise DataError(f"no queries selected from {settings.data}")
    return queries


def run_benchmark(
    settings: RunSettings, config: AgentConfig, *, console: Console | None = None, repair: bool = False
) -> RunResult:
    """Run (or resume) a benchmark with the executor `settings` names; blocks until it ends.

    SIGINT and SIGTERM cancel the queries in flight (their sandboxes are closed), record the
    session as `interrupted` and raise `KeyboardInterrupt`.
    """
    console = console or Console(stderr=True)
    queries = chosen_queries(settings)  # before the lock: a refused selection leaves no directory behind
    config, limits = follow_concurrency(config, settings.concurrency, len(queries))
    console.print(limits_line(limits), highlight=False, soft_wrap=True)
    with DirectoryLock(settings.out, command="agent run") as lock:
        if lock.took_over:
            console.print(f"note: took over the lock of a run that ended without releasing it ({lock.took_over})",
                          highlight=False, soft_wrap=True)  # fmt: skip
        plan = plan_run(settings, config, repair=repair, queries=queries, limits=limits)
        for line in plan.repaired:
            console.print(f"repaired: {line}", highlight=False, soft_wrap=True)
        for query_id, reason in plan.corrupt.items():
            console.print(f"warning: {reason}; query {query_id} is redone", highlight=False, soft_wrap=True)
        return _run_session(plan, console)


def _run_session(plan: RunPlan, console: Console) -> RunResult:
    settings = plan.settings
    progress = RunProgress(
        plan.stats,
        console,
        live=settings.progress and console.is_terminal,
        cost_of=lambda usage: settings.cost(policy_model_name(plan.config.llm, settings.endpoints), usage),
    )
    status, shards, interrupted = "failed", [], False
    try:
        with progress:
            if settings.executor == "ray":
                from agent.runner.ray_executor import run_on_ray

                shards = run_on_ray(plan, progress)
            else:
                shards = [
                    run_interruptible(
                        run_shard(
                            settings, plan.config, plan.pending, run_id=plan.run_id, attempt=plan.attempt,
                            observer=progress, sink=plan.layout,
                        )
                    )
                ]  # fmt: skip
        status = "aborted" if any(shard.aborted for shard in shards) else "completed"
    except KeyboardInterrupt:
        status, interrupted = "interrupted", True
    finally:
        summary = plan.stats.summary()
        summary["pending"] = max(0, summary["queries"] - summary["finished"] - summary["failed"])
        summary["cancelled"] = sum(len(shard.cancelled) for shard in shards)
        summary["cost"] = settings.cost(policy_model_name(plan.config.llm, settings.endpoints), summary["usage"])
        summary["shards"] = [shard.worker for shard in shards]
        plan.layout.write_manifest(close_session(plan.manifest, status, summary))
    if interrupted:
        raise RunInterrupted(summary)
    return RunResult(status, summary, shards)
