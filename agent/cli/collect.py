"""`python -m agent collect`: full step trees of training queries, one file per query, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from agent.cli.options import (
    BaseUrlOpt,
    CacheOpt,
    ConfigOpt,
    DepthOpt,
    FunctionToolsOpt,
    McpOpt,
    ModelOpt,
    NOpt,
    OpenApiOpt,
    SandboxOpt,
    SpecOpt,
    TimeoutOpt,
    ToolsDirOpt,
    ToolsetOpt,
    VirtualUrlOpt,
    build_config,
)
from agent.collect import FAILURES_FILE, CollectProgress, CollectReport, TreeCollector
from agent.config import AgentConfig
from agent.toolsets import ToolsetChoice, check_toolset_paths, default_toolset, open_provider
from codetool_kernel.aio import run_interruptible
from codetool_kernel.cli import one_error_line, report_interrupt
from codetool_kernel.dirlock import DirectoryLock
from codetool_kernel.errors import CodeToolError, DataError
from codetool_kernel.paths import check_output_dir
from rm.tree import DFS_DIR
from tools.toolset import Query, ToolProvider


def collect_command(
    queries: Annotated[Path, typer.Option("--queries", help="Query file, or a folder of query files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder; trees go to OUT/dfs_data/.")],
    toolset: ToolsetOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Queries expanded at once.")] = 4,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N queries.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress bar on stderr.")] = True,
    config: ConfigOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    n: NOpt = None,
    max_depth: DepthOpt = None,
    sandbox: SandboxOpt = None,
    timeout: TimeoutOpt = None,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    virtual_url: VirtualUrlOpt = None,
    tools_dir: ToolsDirOpt = None,
    openapi: OpenApiOpt = None,
    mcp: McpOpt = None,
    function_tools: FunctionToolsOpt = None,
) -> None:
    """Expand the full step tree of every query (n children per node) and write OUT/dfs_data/{q_id}_path.json.

    Finished queries are skipped, so rerunning the same command resumes a killed run.
    """
    with one_error_line():
        check_output_dir(out, "--out")
        agent_config = build_config(
            config, base_url=base_url, model=model, n=n, max_depth=max_depth, sandbox=sandbox, timeout=timeout,
            openapi=openapi, mcp=mcp, function_tools=function_tools,
        )  # fmt: skip
        sources = agent_config.tools
        choice = check_toolset_paths(
            ToolsetChoice(
                default_toolset(toolset, sources, "stabletoolbench"), spec=spec, cache=cache,
                virtual_url=virtual_url, tools_dir=tools_dir, sources=sources,
            )
        )  # fmt: skip
        with DirectoryLock(out, command="agent collect"):  # one writer per output folder
            try:
                report = run_interruptible(_collect(agent_config, choice, queries, out, concurrency, limit, progress))
            except KeyboardInterrupt:
                raise report_interrupt(
                    f"interrupted: finished trees are kept in {out / DFS_DIR}; rerun the same command to resume"
                ) from None
        _print_summary(report, out)
        if report.failed:
            raise CodeToolError(
                f"{len(report.failed)} queries failed (see {out / FAILURES_FILE}); rerun the same command to retry them"
            )


def load_query_files(provider: ToolProvider, path: Path) -> list[Query]:
    """The queries of one file, or of every `*.json` file in a folder (in name order)."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise DataError(f"{path}: no *.json query files")
        return [query for file in files for query in provider.load_queries(str(file))]
    if not path.exists():
        raise DataError(f"{path}: no such file")
    return provider.load_queries(str(path))


async def _collect(
    config: AgentConfig, choice: ToolsetChoice, path: Path, out: Path, concurrency: int, limit: int | None, live: bool
) -> CollectReport:
    async with open_provider(choice) as provider:
        queries = load_query_files(provider, path)[:limit]
        with _ProgressBar(live) as bar:
            async with TreeCollector(config, concurrency=concurrency, on_progress=bar.update) as collector:
                return await collector.collect(queries, provider.toolset_for, out)


class _ProgressBar:
    """Queries done of those to do, with nodes expanded, executions ok/failed and completion tokens."""

    def __init__(self, live: bool) -> None:
        self._progress = Progress(
            TextColumn("[bold]collect"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not live,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        self._task = self._progress.add_task("collect", total=None, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, state: CollectProgress) -> None:
        assert self._task is not None
        detail = (
            f"queries failed {state.failed} · nodes {state.nodes} · exec ok {state.exec_ok}"
            f" / failed {state.exec_failed} · tokens {state.completion_tokens}"
        )
        self._progress.update(self._task, total=state.queries, completed=state.done + state.failed, detail=detail)


def _print_summary(report: CollectReport, out: Path) -> None:
    state = report.progress
    typer.echo(
        f"collected {len(report.written)} queries, skipped {len(report.skipped)} finished earlier, "
        f"{len(report.failed)} failed; {state.nodes} nodes ({state.exec_ok} ran, {state.exec_failed} failed), "
        f"{state.completion_tokens} completion tokens; trees in {out / DFS_DIR}"
    )
