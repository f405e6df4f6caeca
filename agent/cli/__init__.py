"""The `python -m agent` command line."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from agent.cli.audit import audit_command
from agent.cli.run import run_command
from agent.cli.solve import solve_command
from codetool.errors import CodeToolError
from codetool.logging import configure_logging

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


@app.callback()
def _root(
    log_level: Annotated[str, typer.Option("--log-level", envvar="CODETOOL_LOG_LEVEL", help="debug, info, warning, error.")] = "warning",
    log_json: Annotated[bool, typer.Option("--log-json", help="Structured logs as JSON lines on stderr.")] = False,
) -> None:
    """CodeTool: solve queries by step-wise code generation under process supervision."""
    configure_logging(level=log_level, json_lines=log_json)


def main() -> None:
    """Run the CLI; a `CodeToolError` ends it with one line on stderr and exit code 2."""
    run_app(app)


def run_app(command_line: typer.Typer) -> None:
    """Run a command line; a `CodeToolError` ends it with one line on stderr and exit code 2."""
    # A process started in the background by a non-interactive shell inherits SIGINT ignored;
    # Ctrl-C / `kill -INT` must still stop a run cleanly (runs resume from where they stopped).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        command_line()
    except CodeToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


__all__ = ["app", "main", "run_app"]
