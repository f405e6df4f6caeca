"""`python -m agent solve`: one query, shown step by step, saved as a trajectory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.agent import CodeToolAgent, QueryFailed, mark_interrupted
from agent.cli.options import (
    BaseUrlOpt,
    BeamOpt,
    CacheOpt,
    ConfigOpt,
    DepthOpt,
    FunctionToolsOpt,
    LlmConcurrencyOpt,
    LlmRetriesOpt,
    LlmTimeoutOpt,
    McpOpt,
    ModelOpt,
    ModeOpt,
    NOpt,
    OpenApiOpt,
    PrmConcurrencyOpt,
    PrmRetriesOpt,
    PrmTimeoutOpt,
    RmModelOpt,
    RmProtocolOpt,
    RmUrlOpt,
    SandboxOpt,
    SandboxPoolOpt,
    SeedOpt,
    SpecOpt,
    StrategyOpt,
    TimeoutOpt,
    ToolConcurrencyOpt,
    ToolsDirOpt,
    ToolsetOpt,
    VirtualUrlOpt,
    build_config,
)
from agent.config import AgentConfig
from agent.display import EventPrinter
from agent.events import QueryFinished, QueryStarted
from agent.toolsets import ToolsetChoice, check_toolset_paths, default_toolset, open_provider
from agent.trajectory import Trajectory
from codetool_kernel.aio import run_interruptible
from codetool_kernel.cli import SOME_FAILED, fail, report_interrupt
from codetool_kernel.errors import DataError
from codetool_kernel.files import to_json, write_json_atomic
from codetool_kernel.paths import check_input, check_output_file
from tools.toolset import Query


def solve_command(
    query: Annotated[str | None, typer.Argument(help="The user query (or use --query-file/--query-id).")] = None,
    toolset: ToolsetOpt = None,
    query_file: Annotated[Path | None, typer.Option("--query-file", help="Benchmark query file.")] = None,
    query_id: Annotated[str | None, typer.Option("--query-id", help="Query id within --query-file.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the trajectory JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trajectory JSON instead of the live view.")] = False,
    all_candidates: Annotated[bool, typer.Option("--all-candidates", help="Show every candidate, not only the chosen.")] = False,
    config: ConfigOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    n: NOpt = None,
    max_depth: DepthOpt = None,
    strategy: StrategyOpt = None,
    mode: ModeOpt = None,
    beam_width: BeamOpt = None,
    seed: SeedOpt = None,
    sandbox: SandboxOpt = None,
    timeout: TimeoutOpt = None,
    rm_url: RmUrlOpt = None,
    rm_model: RmModelOpt = None,
    rm_protocol: RmProtocolOpt = None,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    virtual_url: VirtualUrlOpt = None,
    tools_dir: ToolsDirOpt = None,
    openapi: OpenApiOpt = None,
    mcp: McpOpt = None,
    function_tools: FunctionToolsOpt = None,
    llm_timeout: LlmTimeoutOpt = None,
    llm_retries: LlmRetriesOpt = None,
    llm_concurrency: LlmConcurrencyOpt = None,
    prm_timeout: PrmTimeoutOpt = None,
    prm_retries: PrmRetriesOpt = None,
    prm_concurrency: PrmConcurrencyOpt = None,
    tool_concurrency: ToolConcurrencyOpt = None,
    sandbox_pool: SandboxPoolOpt = None,
) -> None:
    """Solve one query step by step and print (or save) its trajectory.

    Exit code 0 when the query was solved to its end, 1 when it failed (the partial trajectory is
    still written to --out), 2 on bad input, 130/143 when interrupted (the partial trajectory,
    `stop_reason: interrupted`, is written to --out).
    """
    if (query is None) == (query_file is None):
        raise typer.BadParameter("give either a QUERY or --query-file with --query-id")
    if query_file is not None and query_id is None:
        raise typer.BadParameter("--query-file needs --query-id")
    if out is not None:
        check_output_file(out, "--out")
    if query_file is not None:
        check_input(query_file, "--query-file")
    agent_config = build_config(
        config, base_url=base_url, model=model, n=n, max_depth=max_depth, strategy=strategy, mode=mode, beam_width=beam_width,
        seed=seed, sandbox=sandbox, timeout=timeout, rm_url=rm_url, rm_protocol=rm_protocol, rm_model=rm_model, llm_timeout=llm_timeout, llm_retries=llm_retries,
        llm_concurrency=llm_concurrency, prm_timeout=prm_timeout, prm_retries=prm_retries,
        prm_concurrency=prm_concurrency, tool_concurrency=tool_concurrency, sandbox_pool=sandbox_pool,
        openapi=openapi, mcp=mcp, function_tools=function_tools,
    )  # fmt: skip
    sources = agent_config.tools
    choice = check_toolset_paths(
        ToolsetChoice(
            default_toolset(toolset, sources, "tmdb"), spec=spec, cache=cache, virtual_url=virtual_url, tools_dir=tools_dir,
            sources=sources,
        )
    )  # fmt: skip
    started: list[Trajectory] = []
    try:
        trajectory = run_interruptible(
            _solve(agent_config, choice, query, query_file, query_id, not as_json, all_candidates, started)
        )
    except KeyboardInterrupt:
        if not started:
            raise report_interrupt("interrupted before the first step; nothing written") from None
        mark_interrupted(started[0])
        where = _save(started[0], out)
        steps = len(started[0].chosen_path)
        raise report_interrupt(f"interrupted after {steps} chosen steps{where}") from None
    except QueryFailed as exc:
        where = _save(exc.trajectory, out)
        raise fail(f"{exc}{where}", SOME_FAILED) from None
    _save(trajectory, out)
    if as_json:
        typer.echo(to_json(trajectory.to_json(), indent=2))
    elif out is not None:
        Console(stderr=True).print(f"[dim]trajectory written to {out}[/]")


def _save(trajectory: Trajectory, out: Path | None) -> str:
    """Write `trajectory` to `out` (when given); the words that say where it went."""
    if out is None:
        return ""
    write_json_atomic(out, trajectory.to_json())
    return f"; the partial trajectory is in {out}" if trajectory.stop_reason in ("error", "interrupted") else ""


async def _solve(
    config: AgentConfig,
    choice: ToolsetChoice,
    text: str | None,
    query_file: Path | None,
    query_id: str | None,
    live: bool,
    all_candidates: bool,
    started: list[Trajectory],
) -> Trajectory:
    printer = EventPrinter(Console(), show_all_candidates=all_candidates) if live else None
    async with open_provider(choice) as provider:
        if query_file is not None:
            matches = provider.load_queries(str(query_file), ids=[str(query_id)])
            if not matches:
                raise DataError(f"{query_file}: no query with id {query_id}")
            query = matches[0]
        else:
            query = Query(query_id="adhoc", text=str(text))
        toolset = provider.toolset_for(query)
        async with CodeToolAgent(config) as agent:
            async for event in agent.stream(query, toolset):
                if isinstance(event, QueryStarted) and event.trajectory is not None:
                    started.append(event.trajectory)
                if printer is not None:
                    printer(event)
                if isinstance(event, QueryFinished):
                    return event.trajectory
    raise AssertionError("the event stream ended without QueryFinished")
