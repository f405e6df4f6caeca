"""`CodeToolAgent`: the public entry point for solving one query at a time, step by step."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from types import TracebackType

from agent.config import AgentConfig
from agent.events import Event, QueryFinished, QueryStarted
from agent.expansion import EventSink, QueryRun, StepExpander
from agent.latent import LatentScorer
from agent.llm import LLMClient
from agent.parsing import parse_step
from agent.prompts import build_instruction
from agent.search import StepJudge, beam_search, greedy_search
from agent.selection import create_selector, selector_class
from agent.trajectory import StepNode, Trajectory
from codetool.errors import CodeToolError, ConfigError
from sandbox.base import Sandbox, create_sandbox
from tools.gateway import ToolGateway
from tools.toolset import Query, ToolSet

_STREAM_BUFFER = 256


class QueryFailed(CodeToolError):
    """A query could not be solved because a dependency failed; `.trajectory` holds what was done."""

    def __init__(self, message: str, trajectory: Trajectory) -> None:
        super().__init__(message)
        self.trajectory = trajectory


class CodeToolAgent:
    """Solves queries by sampling, executing, scoring and selecting code steps.

    Use as `async with CodeToolAgent(config) as agent: trajectory = await agent.solve(query, toolset)`.
    Calling `solve` on an agent that was not entered starts and stops its resources around
    that one call. Resources passed in (sandbox, gateway, LLM client, scorer) are used as
    they are and left open; the ones the agent creates itself it also closes.
    """

    def __init__(
        self,
        config: AgentConfig | None = None,
        *,
        sandbox: Sandbox | None = None,
        gateway: ToolGateway | None = None,
        llm: LLMClient | None = None,
        scorer: LatentScorer | None = None,
        run_id: str | None = None,
    ) -> None:
        self.config = config or AgentConfig()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._sandbox, self._gateway, self._llm, self._scorer = sandbox, gateway, llm, scorer
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        if self._stack is not None:
            return
        async with AsyncExitStack() as stack:
            if self._sandbox is None:
                sandbox = self.config.sandbox
                backend = create_sandbox(sandbox.backend, sandbox.limits, **dict(sandbox.options))
                if self.config.audit_db is not None:
                    from sandbox.audit import AuditedSandbox

                    backend = AuditedSandbox(
                        backend, self.config.audit_db, run_id=self.run_id, jsonl_path=self.config.audit_jsonl
                    )
                self._sandbox = await stack.enter_async_context(backend)
                stack.callback(setattr, self, "_sandbox", None)
            if self._gateway is None:
                gateway = self.config.gateway
                self._gateway = await stack.enter_async_context(
                    ToolGateway(
                        timeout_s=gateway.timeout_s,
                        max_response_bytes=gateway.max_response_bytes,
                        concurrency=gateway.concurrency,
                        memo=gateway.memo,
                    )
                )
                stack.callback(setattr, self, "_gateway", None)
            if self._llm is None:
                self._llm = await stack.enter_async_context(LLMClient(self.config.llm))
                stack.callback(setattr, self, "_llm", None)
            if self._scorer is None and self._wants_prm():
                from agent.prm import PrmScorer

                self._scorer = await stack.enter_async_context(PrmScorer(self.config.rm))
                stack.callback(setattr, self, "_scorer", None)
            self._stack = stack.pop_all()

    def _wants_prm(self) -> bool:
        mode = selector_class(self.config.search.mode)
        if mode.requires_latent and not self.config.rm.url and self._scorer is None:
            raise ConfigError(f"mode {mode.name} ranks steps by the PRM alone: set --rm-url")
        return mode.uses_latent and self.config.rm.url is not None

    async def aclose(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> CodeToolAgent:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

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
        assert self._sandbox is not None and self._gateway is not None and self._llm is not None
        search = self.config.search
        instruction = build_instruction(toolset.docs, toolset.usage_notes, search.feedback_chars)
        trajectory = Trajectory(
            q_id=query.query_id,
            query=query.text,
            instruction=instruction,
            toolset=toolset.name,
            model=self.config.llm.model,
            mode=search.mode,
        )
        run = QueryRun(
            run_id=self.run_id,
            query=query,
            toolset=toolset,
            instruction=instruction,
            tools=self._gateway.session(toolset, query_id=query.query_id),
            trajectory=trajectory,
            emit=emit,
        )
        await emit(QueryStarted(query.query_id, query.text, toolset.name))
        selector = create_selector(search.mode, f"{search.seed}:{query.query_id}")
        judge = StepJudge(selector, self._scorer, fallback_to_no_latent=self.config.rm.fallback_to_no_latent)
        expander = StepExpander(self._llm, self._sandbox, search)
        started = time.perf_counter()
        try:
            if selector.search == "beam":
                path = await beam_search(run, expander, judge, search.max_depth, search.beam_width)
            else:
                path = await greedy_search(run, expander, judge, search.max_depth)
        except CodeToolError as exc:
            trajectory.error, trajectory.stop_reason = str(exc), "error"
            raise QueryFailed(f"query {query.query_id}: {exc}", trajectory) from exc
        finally:
            trajectory.usage = run.usage.as_dict()
            trajectory.duration_s = time.perf_counter() - started
        _conclude(trajectory, path)
        return trajectory


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
