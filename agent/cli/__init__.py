"""The `python -m agent` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.audit import audit_command
from agent.cli.collect import collect_command
from agent.cli.run import run_command
from agent.cli.sandbox import sandbox_app
from agent.cli.solve import solve_command
from codetool_kernel.cli import run_cli
from codetool_kernel.logging import configure_logging

app = typer.Typer(
    name="agent",
    help="CodeTool: solve queries by step-wise code generation under process supervision.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("solve")(solve_command)
app.command("audit")(audit_command)
app.command("run")(run_command)
app.command("collect")(collect_command)
app.add_typer(sandbox_app, name="sandbox", help="Run code in a CodeTool sandbox (with `--allow`, through the tool gateway).")


@app.callback()
def configure_from_options(
    log_level: Annotated[str, typer.Option("--log-level", envvar="CODETOOL_LOG_LEVEL", help="debug, info, warning, error.")] = "warning",
    log_json: Annotated[bool, typer.Option("--log-json", help="Structured logs as JSON lines on stderr.")] = False,
) -> None:
    """CodeTool: solve queries by step-wise code generation under process supervision."""
    configure_logging(level=log_level, json_lines=log_json)


def main() -> None:
    """Run the CLI under the exit-code policy of `codetool_kernel.cli`."""
    run_cli(app, prog_name="python -m agent")


__all__ = ["app", "configure_from_options", "main"]
