"""The `codetool` console script: every command of every package, under the one exit-code policy.

`codetool solve|run|collect|audit` (the agent), `codetool sandbox ...` (with the tool gateway behind
`--allow`), `codetool tools ...`, `codetool rm serve|label|train`, `codetool eval ...`. The exit codes
are those of `codetool_kernel.cli`; `python -m agent solve` and the other `python -m` apps keep working.
"""

from __future__ import annotations

import typer

from agent.cli import configure_from_options
from agent.cli.audit import audit_command
from agent.cli.collect import collect_command
from agent.cli.run import run_command
from agent.cli.sandbox import sandbox_app
from agent.cli.solve import solve_command
from codetool_kernel.cli import run_cli
from evaluation.cli import app as eval_app
from rm.cli import app as rm_app
from tools.cli import app as tools_app

app = typer.Typer(
    name="codetool",
    help="CodeTool: programmatic tool use by LLMs under process supervision.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("solve")(solve_command)
app.command("run")(run_command)
app.command("collect")(collect_command)
app.command("audit")(audit_command)
app.add_typer(sandbox_app, name="sandbox", help="Run code in a CodeTool sandbox (with `--allow`, through the tool gateway).")
app.add_typer(tools_app, name="tools", help="Tool sets and virtual API servers.")
app.add_typer(rm_app, name="rm", help="The process reward model: serve, label, train.")
app.add_typer(eval_app, name="eval", help="Evaluate runs: final answers, SoPR, SCEP, TMDB paths, comparisons, reports.")


app.callback(help="CodeTool: programmatic tool use by LLMs under process supervision.")(configure_from_options)


def main() -> None:
    """The `codetool` console script."""
    run_cli(app, prog_name="codetool")
