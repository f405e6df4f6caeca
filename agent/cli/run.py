"""`python -m agent run`: a whole benchmark (or a slice of it), resumable, into one run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    VirtualUrlOpt,
    build_config,
)
from codetool.errors import ConfigError
from codetool.validation import describe_validation_error

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
LlmConcurrencyOpt = Annotated[
    int | None, typer.Option("--llm-concurrency", help="LLM requests in flight (per endpoint).")
]
ToolConcurrencyOpt = Annotated[
    int | None, typer.Option("--tool-concurrency", help="Tool calls in flight through the gateway.")
]
PrmConcurrencyOpt = Annotated[int | None, typer.Option("--prm-concurrency", help="PRM requests in flight.")]
SandboxPoolOpt = Annotated[
    int | None, typer.Option("--sandbox-pool", help="Sandbox executions at once (backend pool size).")
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
    llm_concurrency: LlmConcurrencyOpt = None,
    tool_concurrency: ToolConcurrencyOpt = None,
    prm_concurrency: PrmConcurrencyOpt = None,
    sandbox_pool: SandboxPoolOpt = None,
    no_progress: NoProgressOpt = False,
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
    """Solve a benchmark's queries into RUN_DIR: one trajectory per query, resumable, with live progress."""
    # Imported here: the runner builds on `agent.cli`, which registers this command.
    from agent.config import update_config
    from agent.runner import RunSettings, load_prices, run_benchmark

    if benchmark == "tmdb" and spec is None:
        raise ConfigError("--benchmark tmdb needs --spec (the RestBench tmdb_spec.json)")
    agent_config = build_config(
        config, base_url=base_url, model=model, n=n, max_depth=max_depth, mode=mode, beam_width=beam_width,
        seed=seed, sandbox=sandbox, timeout=timeout, rm_url=rm_url, rm_protocol=rm_protocol,
    )  # fmt: skip
    agent_config = update_config(
        agent_config,
        {
            "llm": _given(max_concurrency=llm_concurrency),
            "gateway": _given(concurrency=tool_concurrency),
            "rm": _given(max_connections=prm_concurrency),
            "sandbox": {"options": {**agent_config.sandbox.options, "pool_size": sandbox_pool}} if sandbox_pool else {},
        },
    )
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
        raise ConfigError(f"invalid --{describe_validation_error(exc).replace('_', '-')}") from None
    result = run_benchmark(settings, agent_config)
    _print_summary(Console(stderr=True), settings, result)
    if result.status == "aborted":
        typer.echo(
            f"error: the run stopped after {result.summary['failed']} failed queries (--max-failures {max_failures}); "
            f"see {settings.out / 'failures'}, fix the cause and run the same command again to resume",
            err=True,
        )
        raise typer.Exit(1)


def _given(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


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
