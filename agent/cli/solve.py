"""`python -m agent solve`: one query, shown step by step, saved as a trajectory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.agent import CodeToolAgent
from agent.cli.options import (
    BaseUrlOpt,
    BeamOpt,
    CacheOpt,
    ConfigOpt,
    DepthOpt,
    ModelOpt,
    ModeOpt,
    NOpt,
    RmProtocolOpt,
    RmUrlOpt,
    SandboxOpt,
    SeedOpt,
    SpecOpt,
    TimeoutOpt,
    ToolsDirOpt,
    ToolsetChoice,
    ToolsetOpt,
    VirtualUrlOpt,
    build_config,
)
from agent.cli.providers import open_provider
from agent.config import AgentConfig
from agent.display import EventPrinter
from agent.events import QueryFinished
from agent.trajectory import Trajectory
from codetool.errors import DataError
from codetool.files import write_json_atomic
from tools.toolset import Query


def solve_command(
    query: Annotated[str | None, typer.Argument(help="The user query (or use --query-file/--query-id).")] = None,
    toolset: ToolsetOpt = "tmdb",
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
    mode: ModeOpt = None,
    beam_width: BeamOpt = None,
    seed: SeedOpt = None,
    sandbox: SandboxOpt = None,
    timeout: TimeoutOpt = None,
    rm_url: RmUrlOpt = None,
    rm_protocol: RmProtocolOpt = None,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    virtual_url: VirtualUrlOpt = None,
    tools_dir: ToolsDirOpt = None,
) -> None:
    """Solve one query step by step and print (or save) its trajectory."""
    if (query is None) == (query_file is None):
        raise typer.BadParameter("give either a QUERY or --query-file with --query-id")
    if query_file is not None and query_id is None:
        raise typer.BadParameter("--query-file needs --query-id")
    agent_config = build_config(
        config, base_url=base_url, model=model, n=n, max_depth=max_depth, mode=mode, beam_width=beam_width,
        seed=seed, sandbox=sandbox, timeout=timeout, rm_url=rm_url, rm_protocol=rm_protocol,
    )
    choice = ToolsetChoice(toolset, spec=spec, cache=cache, virtual_url=virtual_url, tools_dir=tools_dir)
    trajectory = asyncio.run(_solve(agent_config, choice, query, query_file, query_id, not as_json, all_candidates))
    if out is not None:
        write_json_atomic(out, trajectory.to_json())
    if as_json:
        typer.echo(json.dumps(trajectory.to_json(), ensure_ascii=False, indent=2))
    elif out is not None:
        Console(stderr=True).print(f"[dim]trajectory written to {out}[/]")


async def _solve(
    config: AgentConfig,
    choice: ToolsetChoice,
    text: str | None,
    query_file: Path | None,
    query_id: str | None,
    live: bool,
    all_candidates: bool,
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
                if printer is not None:
                    printer(event)
                if isinstance(event, QueryFinished):
                    return event.trajectory
    raise AssertionError("the event stream ended without QueryFinished")
