"""Expanding a node: sample `n` candidate steps for it and run them all concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agent.config import SearchConfig
from agent.events import CandidateExecuted, CandidatesSampled, Event
from agent.parsing import parse_step
from agent.policy import PolicyModel, Usage
from agent.prompts import BUILTIN_PROMPTS, PromptTemplates, step_stop
from agent.trajectory import SamplingRecord, StepNode, Trajectory, replay_code
from codetool_kernel.nodepaths import STATUS_ERROR, STATUS_OK, STATUS_TOOL_FAILURE, child_path
from codetool_kernel.protocol import Cell, ToolHandler
from rm.prompt import PriorStep
from sandbox.base import SandboxSession
from tools.toolset import Query, ToolSet

EventSink = Callable[[Event], Awaitable[None]]


@dataclass
class QueryRun:
    """The state of one query being solved."""

    run_id: str
    query: Query
    toolset: ToolSet
    instruction: str
    tools: ToolHandler
    trajectory: Trajectory
    emit: EventSink
    sandbox: SandboxSession
    """Where this query's candidates run (`Sandbox.session`, open while the query is searched)."""
    usage: Usage = field(default_factory=Usage)
    prompts: PromptTemplates = BUILTIN_PROMPTS
    """The templates `instruction` was built from, and the step prompts will be."""


class StepExpander:
    """Samples candidates for a node and executes each in its query's sandbox session."""

    def __init__(self, llm: PolicyModel, search: SearchConfig) -> None:
        self.llm = llm
        self.search = search

    async def expand(self, run: QueryRun, parents: Sequence[StepNode], n: int | None = None) -> list[StepNode]:
        """Sample and execute the children of the last node in `parents` (the root when empty)."""
        depth = len(parents) + 1
        parent = parents[-1] if parents else None
        history = [PriorStep(node.content, node.output) for node in parents]
        messages = run.prompts.build_messages(run.instruction, run.query.text, history, self.search.feedback_chars)
        samples = await self.llm.sample(messages, n=n or self.search.n, stop=[step_stop(depth)])
        run.usage.add(samples.usage)
        run.trajectory.sampling.append(
            SamplingRecord(
                parent=parent.path if parent else None,
                depth=depth,
                n=len(samples.texts),
                latency_s=samples.latency_s,
                prompt_tokens=samples.usage.prompt_tokens,
                completion_tokens=samples.usage.completion_tokens,
                requests=samples.usage.requests,
            )
        )
        children = [self._new_node(parent, depth, index, text) for index, text in enumerate(samples.texts, start=1)]
        run.trajectory.nodes.extend(children)
        await run.emit(
            CandidatesSampled(
                depth=depth,
                parent=parent.path if parent else None,
                paths=tuple(node.path for node in children),
                latency_s=samples.latency_s,
                completion_tokens=samples.usage.completion_tokens,
            )
        )
        await asyncio.gather(*(self._execute(run, parents, node) for node in children))
        return children

    def _new_node(self, parent: StepNode | None, depth: int, index: int, completion: str) -> StepNode:
        step = parse_step(completion)
        return StepNode(
            path=child_path(parent.path if parent else None, index),
            depth=depth,
            index=index,
            parent=parent.path if parent else None,
            completion=completion,
            content=f"{step.text.rstrip()}\n{step_stop(depth)}\n",
            title=step.title,
            code=step.code,
            finished=step.finished,
            parse_notes=list(step.notes),
            is_leaf=step.finished or not step.has_code or depth >= self.search.max_depth,
        )

    async def _execute(self, run: QueryRun, parents: Sequence[StepNode], node: StepNode) -> None:
        if not node.code:
            node.status, node.r_spot = STATUS_ERROR, 0.0
            node.error = None if node.finished else "the step holds no code"
            await run.emit(CandidateExecuted(node))
            return
        cell = Cell(
            code=node.code,
            replay=replay_code(parents),
            preset=run.toolset.preset,
            tags={"run_id": run.run_id, "query_id": run.query.query_id, "node": node.path},
        )
        result = await run.sandbox.execute(cell, run.tools)
        node.stdout, node.error, node.timed_out = result.stdout, result.error, result.timed_out
        node.api_calls, node.exec_s, node.peak_memory_kb = result.api_calls, result.duration_s, result.peak_memory_kb
        if not result.ok:
            node.status = STATUS_ERROR
        elif self._tool_failed(result.stdout):
            node.status = STATUS_TOOL_FAILURE
        else:
            node.status = STATUS_OK
        node.r_spot = 1.0 if node.status == STATUS_OK else 0.0
        await run.emit(CandidateExecuted(node))

    def _tool_failed(self, stdout: str) -> bool:
        lowered = stdout.lower()
        return any(marker.lower() in lowered for marker in self.search.failure_markers)
