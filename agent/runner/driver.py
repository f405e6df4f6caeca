"""Running a benchmark: plan the session (resume), run it on an executor, record how it ended."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from agent.cli.providers import open_provider
from agent.config import AgentConfig
from agent.runner.engine import ShardOutcome, run_shard
from agent.runner.layout import RunLayout
from agent.runner.manifest import close_session, open_manifest
from agent.runner.progress import RunProgress
from agent.runner.queries import select_queries
from agent.runner.settings import RunSettings
from agent.runner.stats import RunStats
from codetool.errors import DataError


@dataclass
class RunPlan:
    """One session of a run: its settings, the queries still to solve, and the figures so far."""

    settings: RunSettings
    config: AgentConfig
    layout: RunLayout
    manifest: dict[str, Any]
    pending: list[str]
    stats: RunStats
    corrupt: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])


@dataclass
class RunResult:
    status: str
    """completed, aborted (error budget spent), interrupted or failed."""
    summary: dict[str, Any]
    shards: list[ShardOutcome]


def with_audit(config: AgentConfig, layout: RunLayout) -> AgentConfig:
    """Record every execution of the run in the run's audit database."""
    return config.model_copy(update={"audit_db": str(layout.audit)})


def plan_run(settings: RunSettings, config: AgentConfig) -> RunPlan:
    """Select the queries, open (or resume) the manifest and find what is already done."""
    queries = select_queries(settings, open_provider(settings.toolset))
    if not queries:
        raise DataError(f"no queries selected from {settings.data}")
    layout = RunLayout(settings.out)
    layout.prepare()
    config = with_audit(config, layout)
    manifest = open_manifest(layout.read_manifest(), settings, config, queries)
    scan = layout.scan([query.query_id for query in queries])
    stats = RunStats(total=len(queries))
    for trajectory in scan.finished.values():
        stats.absorb(trajectory, earlier=True)
    pending = [query.query_id for query in queries if query.query_id not in scan.finished]
    layout.write_manifest(manifest)
    return RunPlan(settings, config, layout, manifest, pending, stats, scan.corrupt)


def run_benchmark(settings: RunSettings, config: AgentConfig, *, console: Console | None = None) -> RunResult:
    """Run (or resume) a benchmark with the executor `settings` names; blocks until it ends."""
    console = console or Console(stderr=True)
    plan = plan_run(settings, config)
    for query_id, reason in plan.corrupt.items():
        console.print(f"warning: {reason}; query {query_id} is redone", highlight=False, soft_wrap=True)
    progress = RunProgress(
        plan.stats,
        console,
        live=settings.progress and console.is_terminal,
        cost_of=lambda usage: settings.cost(plan.config.llm.model, usage),
    )
    status, shards = "failed", []
    try:
        with progress:
            if settings.executor == "ray":
                from agent.runner.ray_executor import run_on_ray

                shards = run_on_ray(plan, progress)
            else:
                shards = [
                    asyncio.run(run_shard(settings, plan.config, plan.pending, run_id=plan.run_id, observer=progress))
                ]
        status = "aborted" if any(shard.aborted for shard in shards) else "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary = plan.stats.summary()
        summary["cost"] = settings.cost(plan.config.llm.model, summary["usage"])
        summary["shards"] = [shard.worker for shard in shards]
        plan.layout.write_manifest(close_session(plan.manifest, status, summary))
    return RunResult(status, summary, shards)
