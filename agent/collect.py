"""`agent collect`: expand the whole step tree of each training query and write it in the reference layout.

Every node samples `n` children until a leaf (`[All Finished]`, no code, or the depth limit); all
nodes of one level are expanded together, their candidates sampled and executed concurrently, and
`concurrency` queries are in flight at once. A query's file is written atomically when its tree is
complete, so a killed run leaves whole files only and the next run skips them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from agent.config import AgentConfig
from agent.events import CandidateExecuted, CandidatesSampled, Event
from agent.expansion import QueryRun
from agent.policy import PolicyModel, policy_model_name
from agent.pool import WorkPool
from agent.reference_layout import exec_record, path_entry
from agent.runtime import Runtime, open_runtime
from agent.search import create_search_strategy
from codetool_kernel.errors import CodeToolError, ConfigError, DataError
from codetool_kernel.files import write_json_atomic
from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.nodepaths import STATUS_OK
from rm.tree import (
    DFS_DIR,
    CollectedTree,
    load_tree,
    path_order,
    query_file_stem,
    tree_file,
)
from sandbox.base import Sandbox
from tools.gateway import ToolGateway
from tools.toolset import Query, ToolSet

log = structlog.get_logger(__name__)

FAILURES_FILE = "collect_failures.json"
TREE = "tree"
"""The search strategy that grows whole trees."""


@dataclass
class CollectProgress:
    """Running totals of one `collect` call, handed to the progress callback after every change."""

    queries: int = 0
    """Queries this run has to expand (finished ones from earlier runs not counted)."""
    done: int = 0
    failed: int = 0
    skipped: int = 0
    nodes: int = 0
    exec_ok: int = 0
    exec_failed: int = 0
    completion_tokens: int = 0


@dataclass
class CollectReport:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Queries whose file a previous run finished."""
    failed: dict[str, str] = field(default_factory=dict)
    """Queries that could not be expanded, with the error; a rerun tries them again."""
    progress: CollectProgress = field(default_factory=CollectProgress)


ProgressCallback = Callable[[CollectProgress], None]


class TreeCollector(AsyncLifecycle):
    """Expands full step trees with the policy LLM and the sandbox.

    `async with TreeCollector(config, concurrency=4) as collector:` then
    `await collector.collect(queries, provider.toolset_for, out_dir)`. Resources passed in (LLM client,
    sandbox, gateway) are used and left open; the ones it creates it also closes.
    """

    def __init__(
        self,
        config: AgentConfig | None = None,
        *,
        concurrency: int = 4,
        llm: PolicyModel | None = None,
        sandbox: Sandbox | None = None,
        gateway: ToolGateway | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
        self.config = config or AgentConfig()
        self.concurrency = concurrency
        self.run_id = uuid.uuid4().hex[:12]
        self._given = {"llm": llm, "sandbox": sandbox, "gateway": gateway}
        self._on_progress = on_progress
        self._progress = CollectProgress()
        self._runtime: Runtime | None = None
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        if self._stack is not None:
            return
        async with AsyncExitStack() as stack:
            self._runtime = await open_runtime(stack, self.config, run_id=self.run_id, **self._given)
            self._stack = stack.pop_all()

    async def aclose(self) -> None:
        stack, self._stack = self._stack, None
        self._runtime = None
        if stack is not None:
            await stack.aclose()

    async def expand_tree(self, query: Query, toolset: ToolSet) -> CollectedTree:
        """Expand the full tree of one query; raises the first `CodeToolError` of the LLM or sandbox."""
        if self._runtime is None:
            raise ConfigError("TreeCollector is not started: use `async with TreeCollector(...)`")
        async with self._runtime.query_run(query, toolset, self._count, mode=TREE) as run:
            started = time.perf_counter()
            await create_search_strategy(TREE, self.config.search).search(run, self._runtime.expander(), None)
            elapsed = time.perf_counter() - started
        return _tree_record(run, self.config, elapsed)

    async def collect(
        self, queries: Sequence[Query], toolset_for: Callable[[Query], ToolSet], out_dir: str | Path
    ) -> CollectReport:
        """Expand and write every query not finished yet; a failing query is reported, not fatal."""
        _refuse_duplicate_ids(queries)
        out = Path(out_dir)
        self._progress = CollectProgress()
        report = CollectReport(progress=self._progress)
        pending = await asyncio.to_thread(_pending_queries, queries, out, report)
        self._progress.queries, self._progress.skipped = len(pending), len(report.skipped)
        self._notify()
        await WorkPool[Query](self.concurrency).run(pending, lambda query: self._collect_one(query, toolset_for, out, report))
        await asyncio.to_thread(_write_failures, out, report.failed)
        return report

    async def _collect_one(
        self, query: Query, toolset_for: Callable[[Query], ToolSet], out: Path, report: CollectReport
    ) -> None:
        try:
            tree = await self.expand_tree(query, toolset_for(query))
            await asyncio.to_thread(write_json_atomic, tree_file(out, query.query_id), tree.model_dump(mode="json"))
        except CodeToolError as exc:
            log.warning("query failed", query_id=query.query_id, error=str(exc))
            report.failed[query.query_id] = str(exc)
            self._progress.failed += 1
        else:
            report.written.append(query.query_id)
            self._progress.done += 1
        self._notify()

    async def _count(self, event: Event) -> None:
        if isinstance(event, CandidatesSampled):
            self._progress.completion_tokens += event.completion_tokens
        elif isinstance(event, CandidateExecuted):
            self._progress.nodes += 1
            if event.node.status == STATUS_OK:
                self._progress.exec_ok += 1
            elif event.node.code:
                self._progress.exec_failed += 1
        else:
            return
        self._notify()

    def _notify(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self._progress)


def _refuse_duplicate_ids(queries: Sequence[Query]) -> None:
    seen: dict[str, str] = {}
    for query in queries:
        stem = query_file_stem(query.query_id)
        if stem in seen:
            raise DataError(
                f"query ids {seen[stem]!r} and {query.query_id!r} would share one file; collect each query group"
                " into its own --out"
            )
        seen[stem] = query.query_id


def _pending_queries(queries: Sequence[Query], out: Path, report: CollectReport) -> list[Query]:
    """The queries without a complete file; stale temporary files of a killed run are removed."""
    folder = out / DFS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*_path.json.*.tmp"):
        stale.unlink(missing_ok=True)
    pending = []
    for query in queries:
        file = tree_file(out, query.query_id)
        if file.exists():
            try:
                load_tree(file)
            except DataError as exc:
                log.warning("redoing a query whose file is unusable", query_id=query.query_id, reason=str(exc))
            else:
                report.skipped.append(query.query_id)
                continue
        pending.append(query)
    return pending


def _write_failures(out: Path, failed: dict[str, str]) -> None:
    file = out / FAILURES_FILE
    if failed:
        write_json_atomic(file, failed)
    else:
        file.unlink(missing_ok=True)


def _tree_record(run: QueryRun, config: AgentConfig, duration_s: float) -> CollectedTree:
    ordered = sorted(run.trajectory.nodes, key=lambda node: path_order(node.path))
    return CollectedTree(
        q_id=run.trajectory.q_id,
        query=run.query.text,
        instruction=run.instruction,
        infer_path=[path_entry(run.trajectory, node) for node in ordered],
        exec_res={node.path: exec_record(run.trajectory, node) for node in ordered},
        toolset=run.toolset.name,
        api_docs=run.toolset.docs,
        model=policy_model_name(config.llm),
        n=config.search.n,
        max_depth=config.search.max_depth,
        usage=run.usage.as_dict(),
        duration_s=duration_s,
        nodes=[node.model_dump(mode="json") for node in ordered],
    )
