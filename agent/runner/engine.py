"""The async runner of one shard of a run: many queries in flight over one shared agent.

Both executors run this: `local` in the driver process over every pending query, `ray` in
each worker over its share. A query's trajectory is written when the query finishes; a
failing query is recorded in `failures/` and the others go on, until the error budget is spent.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from agent.agent import CodeToolAgent, QueryFailed
from agent.cli.providers import open_provider
from agent.config import AgentConfig
from agent.runner.balancing import BalancedLLMClient
from agent.runner.layout import RunLayout
from agent.runner.queries import select_queries
from agent.runner.settings import RunSettings
from agent.trajectory import Trajectory
from codetool.errors import DataError
from codetool.text import truncate
from tools.toolset import Query, ToolProvider

log = structlog.get_logger(__name__)

_ERROR_CHARS = 500


class QueryObserver(Protocol):
    """Told about each query as it ends (the progress display)."""

    def finished(self, trajectory: Trajectory) -> None: ...

    def failed(self, query_id: str, error: str) -> None: ...


@dataclass
class ShardOutcome:
    """What one shard did."""

    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    aborted: bool = False
    """The error budget ran out before every query was tried."""
    worker: dict[str, Any] = field(default_factory=lambda: {"pid": os.getpid(), "host": socket.gethostname()})

    def as_dict(self) -> dict[str, Any]:
        return {"finished": self.finished, "failed": self.failed, "aborted": self.aborted, "worker": self.worker}


async def run_shard(
    settings: RunSettings,
    config: AgentConfig,
    query_ids: Sequence[str],
    *,
    run_id: str,
    observer: QueryObserver | None = None,
) -> ShardOutcome:
    """Solve the queries `query_ids` of the run described by `settings` into its run directory."""
    if not query_ids:
        return ShardOutcome()
    async with AsyncExitStack() as stack:
        provider = await stack.enter_async_context(open_provider(settings.toolset))
        shard = settings.model_copy(update={"query_ids": tuple(query_ids), "limit": None})
        queries = await asyncio.to_thread(select_queries, shard, provider)
        llm = None
        if settings.endpoints:
            llm = await stack.enter_async_context(BalancedLLMClient(config.llm, settings.endpoints))
        agent = await stack.enter_async_context(CodeToolAgent(config, llm=llm, run_id=run_id))
        outcome = await _Shard(settings, RunLayout(settings.out), agent, provider, observer).run(queries)
    return outcome


class _Shard:
    def __init__(
        self,
        settings: RunSettings,
        layout: RunLayout,
        agent: CodeToolAgent,
        provider: ToolProvider,
        observer: QueryObserver | None,
    ) -> None:
        self.settings, self.layout, self.agent, self.provider = settings, layout, agent, provider
        self.observer = observer
        self.outcome = ShardOutcome()
        self._stop = asyncio.Event()

    async def run(self, queries: Sequence[Query]) -> ShardOutcome:
        pending: asyncio.Queue[Query] = asyncio.Queue()
        for query in queries:
            pending.put_nowait(query)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.settings.concurrency, len(queries))):
                    group.create_task(self._work(pending))
        except ExceptionGroup as failed:  # the run itself broke (e.g. its folder became unwritable)
            raise failed.exceptions[0] from None
        self.outcome.aborted = self._stop.is_set() and not pending.empty()
        return self.outcome

    async def _work(self, pending: asyncio.Queue[Query]) -> None:
        while not self._stop.is_set():
            try:
                query = pending.get_nowait()
            except asyncio.QueueEmpty:
                return
            await self._solve(query)

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
            try:
                await asyncio.to_thread(self.layout.write_trajectory, trajectory)
            except OSError as exc:
                raise DataError(
                    f"cannot write the trajectory of {query.query_id} into {self.layout.trajectories}: {exc}"
                ) from None
            self.outcome.finished.append(query.query_id)
            if self.observer is not None:
                self.observer.finished(trajectory)
            return
        error = truncate(" ".join(error.split()), _ERROR_CHARS)
        await asyncio.to_thread(self.layout.write_failure, query.query_id, error, partial)
        self.outcome.failed[query.query_id] = error
        log.info("query failed", query_id=query.query_id, error=error)
        if self.observer is not None:
            self.observer.failed(query.query_id, error)
        budget = self.settings.max_failures
        if budget is not None and len(self.outcome.failed) > budget:
            self._stop.set()
