"""The async runner of one shard of a run: many queries in flight over one shared agent.

Both executors run this: `local` in the driver process over every pending query, `ray` in
each worker over its share (the driver ships the `Query` objects; no query file is read here).
A query's trajectory is written when the query finishes; a failing query is recorded in
`failures/` and the others go on, until the error budget is spent: once more than
`max_failures` queries failed, no query starts and the ones in flight are cancelled (they are
pending again, and solved on resume). On Ray the budget is the run's, shared by its shards.

Results are written by a `ResultSink`: the run directory itself in the driver, or (on Ray) a
channel back to the driver, which alone writes the directory it holds the lock of.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from agent.agent import CodeToolAgent, QueryFailed
from agent.config import AgentConfig
from agent.policy import open_policy_model
from agent.pool import WorkPool
from agent.runner.layout import RunLayout
from agent.runner.settings import RunSettings
from agent.toolsets import open_provider
from agent.trajectory import Trajectory
from codetool_kernel.errors import DataError
from codetool_kernel.text import truncate
from tools.toolset import Query, ToolProvider

if TYPE_CHECKING:
    from sandbox.audit import AuditWriter

log = structlog.get_logger(__name__)

_ERROR_CHARS = 500
_WATCH_S = 0.5
"""How often a shard with a shared budget asks whether to stop (budget spent elsewhere, or the driver stopping)."""


class QueryObserver(Protocol):
    """Told about each query as it ends (the progress display)."""

    def finished(self, trajectory: Trajectory) -> None: ...

    def failed(self, query_id: str, error: str) -> None: ...


class ResultSink(Protocol):
    """Where a shard's results go (blocking calls, made off the event loop)."""

    def write_trajectory(self, trajectory: Trajectory) -> None: ...

    def write_failure(self, query_id: str, error: str, partial: Trajectory | None) -> None: ...


class SharedBudget(Protocol):
    """The error budget of a run whose shards run apart (Ray), kept by the driver."""

    async def charge(self) -> int:
        """Count one more failed query; its number among the run's failures (1 for the first)."""
        ...

    async def spent(self) -> bool:
        """Whether the shards must stop: the run's failures exceed the budget, or the driver stopped the run."""
        ...


class _LocalBudget:
    def __init__(self) -> None:
        self.count = 0

    async def charge(self) -> int:
        self.count += 1
        return self.count


@dataclass
class ShardOutcome:
    """What one shard did."""

    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    """In flight when the error budget ran out, and cancelled (pending again)."""
    aborted: bool = False
    """The error budget ran out before every query was tried."""
    worker: dict[str, Any] = field(default_factory=lambda: {"pid": os.getpid(), "host": socket.gethostname()})

    def as_dict(self) -> dict[str, Any]:
        return {
            "finished": self.finished, "failed": self.failed, "cancelled": self.cancelled,
            "aborted": self.aborted, "worker": self.worker,
        }  # fmt: skip


async def run_shard(
    settings: RunSettings,
    config: AgentConfig,
    queries: Sequence[Query],
    *,
    run_id: str,
    attempt: int | None = None,
    observer: QueryObserver | None = None,
    sink: ResultSink | None = None,
    budget: SharedBudget | None = None,
    audit: AuditWriter | None = None,
) -> ShardOutcome:
    """Solve `queries` of the run described by `settings` into `sink` (default: its run directory).

    `budget` is the run's error budget, shared with other shards and watched while this one runs
    (default: a budget of this shard's own); `audit` takes the executions' audit records instead
    of `config.audit_db`.
    """
    if not queries:
        return ShardOutcome()
    async with AsyncExitStack() as stack:
        provider = await stack.enter_async_context(open_provider(replace(settings.toolset, sources=config.tools)))
        llm = await open_policy_model(stack, config.llm, endpoints=settings.endpoints)
        agent = await stack.enter_async_context(
            CodeToolAgent(config, llm=llm, run_id=run_id, attempt=attempt, audit=audit)
        )
        shard = _Shard(settings, sink or RunLayout(settings.out), agent, provider, observer, budget)
        outcome = await shard.run(queries)
    return outcome


class _Shard:
    def __init__(
        self,
        settings: RunSettings,
        sink: ResultSink,
        agent: CodeToolAgent,
        provider: ToolProvider,
        observer: QueryObserver | None,
        shared: SharedBudget | None,
    ) -> None:
        self.settings, self.sink, self.agent, self.provider = settings, sink, agent, provider
        self.observer = observer
        self.shared = shared
        self.budget: SharedBudget | _LocalBudget = shared or _LocalBudget()
        self.outcome = ShardOutcome()
        self.pool: WorkPool[Query] = WorkPool(settings.concurrency)

    async def run(self, queries: Sequence[Query]) -> ShardOutcome:
        try:
            async with asyncio.TaskGroup() as group:
                work = group.create_task(self.pool.run(queries, self._solve))
                if self.shared is not None:
                    watcher = group.create_task(self._watch(self.shared))
                    await asyncio.wait([work])
                    watcher.cancel()
        except ExceptionGroup as failed:  # the run itself broke (e.g. its folder became unwritable)
            raise failed.exceptions[0] from None
        pooled = work.result()
        for query in pooled.cancelled:
            self.outcome.cancelled.append(query.query_id)
            log.info("query cancelled by the error budget", query_id=query.query_id)
        self.outcome.aborted = self.pool.halted and (pooled.untried > 0 or bool(self.outcome.cancelled))
        return self.outcome

    def _over_budget(self, failures: int) -> bool:
        return self.settings.max_failures is not None and failures > self.settings.max_failures

    async def _watch(self, shared: SharedBudget) -> None:
        """Halt once the other shards spent the run's budget, or the driver stopped the run."""
        while not self.pool.halted:
            if await shared.spent():
                log.info("the run's error budget is spent or the run stopped: this shard stops")
                self.pool.halt()
                return
            await asyncio.sleep(_WATCH_S)

    async def _solve(self, query: Query) -> None:
        partial: Trajectory | None = None
        try:
            toolset = self.provider.toolset_for(query)
            trajectory = await self.agent.solve(query, toolset)
        except QueryFailed as exc:
            error, partial = str(exc), exc.trajectory
        except Exception as exc:  # one query's failure, whatever it is, must not end the run
            error = f"query {query.query_id}: {type(exc).__name__}: {exc}"
        else:
            self.pool.settle()  # done: no longer cancelled by the error budget
            try:
                await asyncio.to_thread(self.sink.write_trajectory, trajectory)
            except OSError as exc:
                raise DataError(f"cannot write the trajectory of {query.query_id}: {exc}") from None
            self.outcome.finished.append(query.query_id)
            if self.observer is not None:
                self.observer.finished(trajectory)
            return
        self.pool.settle()
        error = truncate(" ".join(error.split()), _ERROR_CHARS)
        if self.settings.max_failures is not None:
            number = await self.budget.charge()
            if self._over_budget(number - 1):  # spent by others meanwhile: this one is cancelled, not failed
                self.outcome.cancelled.append(query.query_id)
                log.info("query cancelled by the error budget", query_id=query.query_id)
                self.pool.halt()
                return
            if self._over_budget(number):
                self.pool.halt()
        self.outcome.failed[query.query_id] = error
        await asyncio.to_thread(self.sink.write_failure, query.query_id, error, partial)
        log.info("query failed", query_id=query.query_id, error=error)
        if self.observer is not None:
            self.observer.failed(query.query_id, error)
