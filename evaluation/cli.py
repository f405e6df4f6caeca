"""The `python -m evaluation` command line: answers, sopr, scep, tmdb-path, compare, export-tooleval, report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codetool_kernel.cli import run_cli
from codetool_kernel.logging import configure_logging
from evaluation.answers import ANSWERS_FILE, AnswerWriter
from evaluation.compare import compare_runs, default_output, read_sopr
from evaluation.endpoint import resolve_endpoint
from evaluation.report import write_report
from evaluation.rundata import load_run
from evaluation.scep import SCEP_FILE, scep_of, scep_table
from evaluation.sopr import REFERENCE_SOPR_FILE, SOPR_FILE, SoprOptions, SoprProtocol, evaluate_sopr
from evaluation.tables import MetricTable, save_metric
from evaluation.tmdb_path import TMDB_PATH_FILE, tmdb_path_of, tmdb_path_table
from evaluation.tooleval_export import DEFAULT_METHOD, export_tooleval

app = typer.Typer(
    name="evaluation",
    help="Evaluate CodeTool runs: final answers, SoPR, SCEP, TMDB paths, comparisons, HTML reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RunDirArg = Annotated[
    Path, typer.Argument(help="A run directory written by `python -m agent run`.", show_default=False)
]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint [env OPENAI_BASE_URL].")]
ApiKeyOpt = Annotated[str | None, typer.Option("--api-key", help="[env OPENAI_API_KEY]")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", help="Requests in flight to the endpoint.")]


def _show_and_save(console: Console, folder: Path, name: str, data: dict, table: MetricTable) -> None:
    table.show(console)
    json_path, csv_path = save_metric(folder, name, data, table)
    console.print(f"[dim]written {json_path} and {csv_path}[/]")


@app.callback()
def _root(
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="CODETOOL_LOG_LEVEL", help="debug, info, warning, error.")
    ] = "warning",
) -> None:
    """Evaluate CodeTool runs."""
    configure_logging(level=log_level)


@app.command("answers")
def answers_command(
    run_dir: RunDirArg,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model that writes missing final answers.", show_default=False)
    ],
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    concurrency: ConcurrencyOpt = 8,
) -> None:
    """Write the final answers of trajectories whose last step printed none (RUN_DIR/eval/answers.json)."""
    endpoint = resolve_endpoint(base_url, api_key, concurrency=concurrency)

    async def write() -> dict:
        run = await asyncio.to_thread(load_run, run_dir)
        async with endpoint.client(model) as llm:
            return await AnswerWriter(llm).answers_for(run)

    answers = asyncio.run(write())
    table = MetricTable("final answers", ["made by", "queries"])
    for method in ("policy", "llm", "none"):
        table.add(method, sum(answer.method == method for answer in answers.values()))
    console = Console()
    table.show(console)
    console.print(f"[dim]written {run_dir / 'eval' / ANSWERS_FILE}[/]")


@app.command("sopr")
def sopr_command(
    run_dir: RunDirArg,
    judge_model: Annotated[str, typer.Option("--judge-model", help="The judge LLM.", show_default=False)],
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Independent judging rounds.")] = 3,
    answer_model: Annotated[
        str | None, typer.Option("--answer-model", help="Writes missing answers (default: the judge).")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Judge temperature (default: the endpoint's).")
    ] = None,
    protocol: Annotated[
        SoprProtocol,
        typer.Option(
            "--protocol",
            help="codetool (ours) or reference (LLM-written answers, check_answer_status judge at temperature 0).",
        ),
    ] = "codetool",
    stabletoolbench_dir: Annotated[
        Path | None,
        typer.Option("--stabletoolbench-dir", help="StableToolBench checkout: --protocol reference judges with its text."),
    ] = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    concurrency: ConcurrencyOpt = 8,
) -> None:
    """Judge every final answer (Solved 1, Unsure 0.5, Unsolved 0) and print SoPR per group, in percent."""
    endpoint = resolve_endpoint(base_url, api_key, concurrency=concurrency)
    options = SoprOptions(
        judge_model=judge_model,
        rounds=rounds,
        answer_model=answer_model,
        temperature=temperature,
        protocol=protocol,
        stabletoolbench_dir=stabletoolbench_dir,
    )
    result, table = asyncio.run(evaluate_sopr(run_dir, endpoint, options))
    console = Console()
    table.show(console)
    name = REFERENCE_SOPR_FILE if protocol == "reference" else SOPR_FILE
    console.print(f"[dim]{result['judge_requests']} judge requests; written {run_dir / 'eval' / name}.json[/]")


@app.command("scep")
def scep_command(run_dir: RunDirArg) -> None:
    """Share of executed steps that succeeded, per group."""
    run = load_run(run_dir)
    result = scep_of(run)
    _show_and_save(Console(), run.eval_dir, SCEP_FILE, result, scep_table(run, result))


@app.command("tmdb-path")
def tmdb_path_command(run_dir: RunDirArg) -> None:
    """Correct path rate of a TMDB run, and its success rate when `sopr` has judged it."""
    run = load_run(run_dir)
    result = tmdb_path_of(run, read_sopr(run))
    _show_and_save(Console(), run.eval_dir, TMDB_PATH_FILE, result, tmdb_path_table(run, result))


@app.command("compare")
def compare_command(
    run_a: Annotated[Path, typer.Argument(help="The first run directory (A).", show_default=False)],
    run_b: Annotated[Path, typer.Argument(help="The second run directory (B).", show_default=False)],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for compare_<B>.json/.csv (default: A's eval/).")
    ] = None,
) -> None:
    """Two runs side by side, per group."""
    first, second = load_run(run_a), load_run(run_b)
    result, table = compare_runs(first, second)
    folder, name = default_output(first, second)
    _show_and_save(Console(), out or folder, name, result, table)


@app.command("export-tooleval")
def export_tooleval_command(
    run_dir: RunDirArg,
    out: Annotated[Path, typer.Argument(help="Folder for {group}/{query_id}_{method}.json.", show_default=False)],
    method: Annotated[str, typer.Option("--method", help="Method name in the file names.")] = DEFAULT_METHOD,
) -> None:
    """Write the run in StableToolBench's answer format (answer_generation, a Finish call at the end)."""
    report = export_tooleval(load_run(run_dir), out, method)
    console = Console()
    for group, count in report.written.items():
        console.print(f"{group}: {count} answers written to {out / group}")
    if report.gave_up:
        console.print(f"[yellow]{len(report.gave_up)} without a final answer, written as give_up_and_restart[/]")
    for query_id, why in report.skipped.items():
        console.print(f"[yellow]left out {query_id}: {why}[/]")
    console.print(
        "[dim]then, in StableToolBench's toolbench/tooleval: python convert_to_answer_format.py "
        f"--answer_dir {out}/<group> --method {method} --output <converted>/<model>/<group>.json[/]"
    )


@app.command("report")
def report_command(
    run_dir: RunDirArg,
    out: Annotated[Path | None, typer.Option("--out", help="HTML file (default: RUN_DIR/eval/report.html).")] = None,
) -> None:
    """Write a self-contained HTML report: summary, plots and every query's search tree."""
    path = write_report(load_run(run_dir), out)
    Console().print(f"report written to {path}")


def main() -> None:
    """Run the CLI under the exit-code policy of `codetool_kernel.cli`."""
    run_cli(app, prog_name="python -m evaluation")
