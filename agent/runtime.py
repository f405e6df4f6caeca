"""The services a search over steps runs on, built once and shared by every query."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.config import AgentConfig
from agent.expansion import EventSink, QueryRun, StepExpander
from agent.policy import PolicyModel, open_policy_model, policy_model_name
from agent.prompts import PromptTemplates
from agent.trajectory import Trajectory
from sandbox.base import Sandbox, create_sandbox
from tools.gateway import ToolGateway
from tools.toolset import Query, ToolSet

if TYPE_CHECKING:
    from sandbox.audit import AuditWriter


@dataclass(frozen=True)
class Runtime:
    """The policy model, the sandbox and the tool gateway of an agent (or a tree collector)."""

    config: AgentConfig
    run_id: str
    llm: PolicyModel
    sandbox: Sandbox
    gateway: ToolGateway

    def expander(self) -> StepExpander:
        return StepExpander(self.llm, self.config.search)

    @contextlib.asynccontextmanager
    async def query_run(self, query: Query, toolset: ToolSet, emit: EventSink, *, mode: str) -> AsyncIterator[QueryRun]:
        """The state of one query while it is searched: its instruction, gateway and sandbox sessions, trajectory."""
        prompts = PromptTemplates(**self.config.prompts.model_dump())
        instruction = prompts.build_instruction(toolset.docs, toolset.usage_notes, self.config.search.feedback_chars)
        trajectory = Trajectory(
            q_id=benchmark_query_id(query),
            query=query.text,
            instruction=instruction,
            toolset=toolset.name,
            model=policy_model_name(self.config.llm),
            mode=mode,
        )
        tools = self.gateway.session(toolset, query_id=query.query_id)
        async with self.sandbox.session(query.query_id) as sandbox:
            yield QueryRun(
                run_id=self.run_id,
                query=query,
                toolset=toolset,
                instruction=instruction,
                tools=tools,
                trajectory=trajectory,
                emit=emit,
                sandbox=sandbox,
                prompts=prompts,
            )


def benchmark_query_id(query: Query) -> int | str:
    """The query's id as its benchmark types it (StableToolBench: an int), else our text id."""
    raw = query.extra.get("query_id")
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and str(raw) == query.query_id else query.query_id


async def open_runtime(
    stack: AsyncExitStack,
    config: AgentConfig,
    *,
    run_id: str,
    llm: PolicyModel | None = None,
    sandbox: Sandbox | None = None,
    gateway: ToolGateway | None = None,
    attempt: int | None = None,
    audit: AuditWriter | None = None,
) -> Runtime:
    """Use the services given, create the others from `config` and leave their closing to `stack`.

    With `config.audit_db` set, a created sandbox records every execution in that database,
    marked with `attempt` (the session of a benchmark run); with `audit`, it gives them to that writer instead.
    """
    if sandbox is None:
        settings = config.sandbox
        backend = create_sandbox(settings.backend, settings.limits, **dict(settings.options))
        if config.audit_db is not None or audit is not None:
            from sandbox.audit import AuditedSandbox

            backend = AuditedSandbox(
                backend, config.audit_db, run_id=run_id, jsonl_path=config.audit_jsonl, attempt=attempt, writer=audit
            )
        sandbox = await stack.enter_async_context(backend)
    if gateway is None:
        gateway = await stack.enter_async_context(ToolGateway(config.gateway))
    if llm is None:
        llm = await open_policy_model(stack, config.llm)
    return Runtime(config, run_id, llm, sandbox, gateway)
