"""`python -m agent run`: a whole benchmark (or a slice of it), resumable, into one run directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

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
    VirtualUrlOpt,
    build_config,
)
from agent.toolsets import check_toolset_paths
from codetool_kernel.cli import BUDGET_SPENT, SOME_FAILED, fail, report_interrupt
from codetool_kernel.errors import ConfigError
from codetool_kernel.paths import check_input, check_output_dir
from codetool_kernel.validation import describe_validation_error

if TYPE_CHECKING:
    from agent.runner import RunResult, RunSettings

BenchmarkOpt = Annotated[
    str, typer.Option("--benchmark", "--toolset", "-t", help="stabletoolbench or tmdb.", show_default=False)
]
DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        "--query-file",
        help="StableToolBench query folder (test_instruction/G.json ...) or a query file; for tmdb the query file.",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Run directory (resumed when it exists).", show_default=False)
]
GroupOpt = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Group(s), e.g. G1_instruction; repeat or comma-separate.")
]
FilteredOpt = Annotated[bool, typer.Option("--filtered", help="Use filter_test_instruction/ (the paper's subset).")]
QueryIdOpt = Annotated[list[str] | None, typer.Option("--query-id", help="Only these queries (repeatable).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="The first N queries of each group.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-k", help="Queries in flight at once (per Ray worker).")]
MaxFailuresOpt = Annotated[
    int, typer.Option("--max-failures", help="Failed queries tolerated before the run stops; -1: never stop.")
]
EndpointOpt = Annotated[
    list[str] | None,
    typer.Option("--endpoint", help="Policy endpoints to balance across (repeatable; replaces --base-url)."),
]
PricesOpt = Annotated[
    Path | None, typer.Option("--prices", help="Price table YAML: `model: {prompt: X, completion: Y}` per 1M tokens.")
]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local, or ray to shard queries over Ray workers.")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster address (default: a local instance).")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", help="Ray shards (default: the cluster's CPUs).")]
RepairOpt = Annotated[
    bool,
    typer.Option("--repair", help="Rebuild a corrupt run.json or audit.sqlite from the trajectory files (kept aside)."),
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="One line per query instead of the live panel.")]


def run_command(
    benchmark: BenchmarkOpt,
    data: DataOpt,
    out: OutOpt,
    group: GroupOpt = None,
    filtered: FilteredOpt = False,
    query_id: QueryIdOpt = None,
    limit: LimitOpt = None,
    concurrency: ConcurrencyOpt = 4,
    max_failures: MaxFailuresOpt = 10,
    endpoint: EndpointOpt = None,
    prices: PricesOpt = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    repair: RepairOpt = False,
    no_progress: NoProgressOpt = False,
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
    """Solve a benchmark's queries into RUN_DIR: one trajectory per query, resumable, with live progress.

    Exit code 0 when every query finished, 1 when the run ended but some queries failed, 2 on bad
    input, 3 when the error budget stopped it, 130/143 when interrupted (run it again to resume).
    """
    # Imported here: the runner builds on `agent.cli`, which registers this command.
    from agent.runner import RunInterrupted, RunSettings, load_prices, run_benchmark

    check_output_dir(out, "--out")
    check_input(data, "--data")
    problems: list[str] = []
    try:
        agent_config = build_config(
            config, base_url=base_url, model=model, n=n, max_depth=max_depth, strategy=strategy, mode=mode, beam_width=beam_width,
            seed=seed, sandbox=sandbox, timeout=timeout, rm_url=rm_url, rm_protocol=rm_protocol, rm_model=rm_model, llm_timeout=llm_timeout,
            llm_retries=llm_retries, llm_concurrency=llm_concurrency, prm_timeout=prm_timeout,
            prm_retries=prm_retries, prm_concurrency=prm_concurrency, tool_concurrency=tool_concurrency,
            sandbox_pool=sandbox_pool, openapi=openapi, mcp=mcp, function_tools=function_tools,
        )  # fmt: skip
    except ConfigError as exc:
        problems.append(str(exc))
    try:
        settings = RunSettings(
            benchmark=benchmark,  # type: ignore[arg-type]
            data=data,
            out=out,
            groups=tuple(part.strip() for item in group or () for part in item.split(",") if part.strip()),
            filtered=filtered,
            query_ids=tuple(query_id or ()),
            limit=limit,
            spec=spec,
            cache=cache,
            virtual_url=virtual_url,
            tools_dir=tools_dir,
            concurrency=concurrency,
            max_failures=None if max_failures < 0 else max_failures,
            endpoints=tuple(endpoint or ()),
            prices=load_prices(prices) if prices else {},
            executor=executor,  # type: ignore[arg-type]
            address=address,
            workers=workers,
            progress=not no_progress,
        )
    except ValidationError as exc:
        problems.append(f"invalid --{describe_validation_error(exc).replace('_', '-').replace('; ', '; --')}")
    if problems:
        raise ConfigError("; ".join(problems))
    check_toolset_paths(replace(settings.toolset, sources=agent_config.tools))
    console = Console(stderr=True)
    try:
        result = run_benchmark(settings, agent_config, console=console, repair=repair)
    except RunInterrupted as stopped:
        done = stopped.summary
        raise report_interrupt(
            f"interrupted: {done['finished']} of {done['queries']} queries finished, {done['failed']} failed, "
            f"{done['pending']} not done (those in flight were cancelled); {out / 'run.json'} records the session; "
            "run the same command again to resume"
        ) from None
    _print_summary(console, settings, result)
    failed = result.summary["failed"]
    if result.status == "aborted":
        cancelled = f"; {len(result.cancelled)} queries in flight were cancelled" if result.cancelled else ""
        raise fail(
            f"the run stopped after {failed} failed queries (--max-failures {max_failures}){cancelled}; "
            f"see {settings.out / 'failures'}, fix the cause and run the same command again to resume",
            BUDGET_SPENT,
        )
    if failed:
        raise fail(
            f"{failed} of {result.summary['queries']} queries failed; their records are in {settings.out / 'failures'} "
            "(run the same command again to retry them)",
            SOME_FAILED,
        )


def _print_summary(console: Console, settings: RunSettings, result: RunResult) -> None:
    summary = result.summary
    table = Table(title=f"run {result.status}: {settings.out}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    exec_success = summary["exec_success"]
    rows = [
        ("finished", f"{summary['finished']}/{summary['queries']}"),
        ("failed", str(summary["failed"])),
        ("answered", str(summary["answered"])),
        ("steps", str(summary["steps"])),
        ("exec success", "-" if exec_success is None else f"{exec_success:.1%}"),
        ("tokens", f"{summary['usage']['total_tokens']:,}"),
    ]
    if summary.get("cost") is not None:
        rows.append(("cost", f"{summary['cost']:.4f}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
