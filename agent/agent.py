"""`CodeToolAgent`: the public entry point for solving one query at a time, step by step."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import structlog

from agent.config import LEGACY_BEAM_MODE, AgentConfig
from agent.events import Event, QueryFinished, QueryStarted
from agent.expansion import EventSink
from agent.latent import LatentScorer
from agent.parsing import parse_step
from agent.policy import PolicyModel
from agent.runtime import Runtime, open_runtime
from agent.search import SearchStrategy, StepJudge, create_search_strategy
from agent.selection import create_selector, selector_class
from agent.trajectory import StepNode, Trajectory
from codetool_kernel.errors import CodeToolError, ConfigError
from codetool_kernel.lifecycle import AsyncLifecycle
from sandbox.base import Sandbox
from tools.gateway import ToolGateway
from tools.toolset import Query, ToolSet

if TYPE_CHECKING:
    from sandbox.audit import AuditWriter

_STREAM_BUFFER = 256
log = structlog.get_logger(__name__)


class QueryFailed(CodeToolError):
    """A query could not be solved because a dependency failed; `.trajectory` holds what was done."""

    def __init__(self, message: str, trajectory: Trajectory) -> None:
        super().__init__(message)
        self.trajectory = trajectory


class CodeToolAgent(AsyncLifecycle):
    """Solves queries by sampling, executing, scoring and selecting code steps.

    Use as `async with CodeToolAgent(config) as agent: trajectory = await agent.solve(query, toolset)`.
    Calling `solve` on an agent that was not entered starts and stops its resources around
    that one call. Resources passed in (sandbox, gateway, LLM client, scorer) are used as
    they are and left open; the ones the agent creates itself it also closes. `audit` takes the
    records of the sandbox it creates instead of `config.audit_db` (a Ray worker relays them).
    """

    def __init__(
        self,
        config: AgentConfig | None = None,
        *,
        sandbox: Sandbox | None = None,
        gateway: ToolGateway | None = None,
        llm: PolicyModel | None = None,
        scorer: LatentScorer | None = None,
        run_id: str | None = None,
        attempt: int | None = None,
        audit: AuditWriter | None = None,
    ) -> None:
        self.config = config or AgentConfig()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.attempt = attempt
        self._given = {"sandbox": sandbox, "gateway": gateway, "llm": llm}
        self._given_scorer = scorer
        self._audit = audit
        self._runtime: Runtime | None = None
        self._scorer: LatentScorer | None = None
        self._strategy: SearchStrategy | None = None
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        if self._stack is not None:
            return
        if self.config.search.mode == LEGACY_BEAM_MODE:
            log.warning("search mode 'beam' is deprecated: use strategy beam (--strategy beam) with mode codetool")
        strategy = create_search_strategy(self.config.search.search_strategy, self.config.search)
        async with AsyncExitStack() as stack:
            runtime = await open_runtime(
                stack, self.config, run_id=self.run_id, attempt=self.attempt, audit=self._audit, **self._given
            )
            scorer = self._given_scorer
            if scorer is None and self._wants_prm():
                from agent.prm import create_latent_scorer

                scorer = await stack.enter_async_context(create_latent_scorer(self.config.rm))
            self._runtime, self._scorer, self._strategy = runtime, scorer, strategy
            self._stack = stack.pop_all()

    def _wants_prm(self) -> bool:
        rule = selector_class(self.config.search.selection_rule)
        configured = bool(self.config.rm.url or self.config.rm.model)
        if rule.requires_latent and not configured:
            raise ConfigError(f"mode {rule.name} ranks steps by the PRM alone: set --rm-url or --rm-model")
        return rule.uses_latent and configured

    async def aclose(self) -> None:
        stack, self._stack = self._stack, None
        self._runtime = self._scorer = self._strategy = None
        if stack is not None:
            await stack.aclose()

    async def solve(self, query: str | Query, toolset: ToolSet) -> Trajectory:
        """Solve `query` with `toolset`; raises `QueryFailed` if the LLM, PRM or sandbox fails."""
        trajectory: Trajectory | None = None
        async for event in self.stream(query, toolset):
            if isinstance(event, QueryFinished):
                trajectory = event.trajectory
        assert trajectory is not None
        return trajectory

    def solve_sync(self, query: str | Query, toolset: ToolSet) -> Trajectory:
        """Blocking twin of `solve`, for scripts without an event loop."""
        return asyncio.run(self.solve(query, toolset))

    async def stream(self, query: str | Query, toolset: ToolSet) -> AsyncIterator[Event]:
        """Solve `query`, yielding events as they happen; the last one is `QueryFinished`."""
        events: asyncio.Queue[Event | BaseException] = asyncio.Queue(_STREAM_BUFFER)
        task = asyncio.create_task(self._solve_into(query, toolset, events))
        try:
            while True:
                item = await events.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, QueryFinished):
                    break
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _solve_into(
        self, query: str | Query, toolset: ToolSet, events: asyncio.Queue[Event | BaseException]
    ) -> None:
        entered_here = self._stack is None
        try:
            if entered_here:
                await self.start()
            trajectory = await self._solve(query, toolset, events.put)
            await events.put(QueryFinished(trajectory))
        except BaseException as exc:  # handed to the consumer, who re-raises it
            await events.put(exc)
        finally:
            if entered_here:
                await self.aclose()

    async def _solve(self, query: str | Query, toolset: ToolSet, emit: EventSink) -> Trajectory:
        if isinstance(query, str):
            query = Query(query_id="adhoc", text=query)
        assert self._runtime is not None and self._strategy is not None
        search = self.config.search
        async with self._runtime.query_run(query, toolset, emit, mode=search.label) as run:
            trajectory = run.trajectory
            await emit(QueryStarted(query.query_id, query.text, toolset.name, trajectory))
            selector = create_selector(search.selection_rule, f"{search.seed}:{query.query_id}")
            judge = StepJudge(selector, self._scorer, fallback_to_no_latent=self.config.rm.fallback_to_no_latent)
            expander = self._runtime.expander()
            started = time.perf_counter()
            try:
                path = await self._strategy.search(run, expander, judge)
            except CodeToolError as exc:
                trajectory.error, trajectory.stop_reason = str(exc), "error"
                raise QueryFailed(f"query {query.query_id}: {exc}", trajectory) from exc
            except asyncio.CancelledError:
                mark_interrupted(trajectory)
                raise
            finally:
                trajectory.usage = run.usage.as_dict()
                trajectory.duration_s = time.perf_counter() - started
            _conclude(trajectory, path)
            return trajectory


def mark_interrupted(trajectory: Trajectory) -> None:
    """Mark a trajectory whose solve was stopped part-way: the steps chosen so far form its path."""
    if trajectory.stop_reason is not None:
        return
    trajectory.stop_reason = "interrupted"
    trajectory.chosen_path = [node.path for node in trajectory.nodes if node.chosen]


def _conclude(trajectory: Trajectory, path: list[StepNode]) -> None:
    last = path[-1]
    last.is_leaf = True
    trajectory.chosen_path = [node.path for node in path]
    trajectory.finished = last.finished
    trajectory.stop_reason = "finished" if last.finished else ("no_code" if not last.code else "max_depth")
    trajectory.final_answer = _final_answer(last)


def _final_answer(last: StepNode) -> str | None:
    """The answer a finished path gives: what its last step printed, or its prose if it wrote no code."""
    if not last.finished:
        return None
    if last.code:
        return last.stdout.strip() or None
    return parse_step(last.completion).answer_text or None
