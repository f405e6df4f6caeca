"""One exit-code policy and one way to run a command line, shared by every CodeTool command.

| code | meaning |
|---|---|
| 0 | everything asked for was done |
| 1 | the command ran to its end but some of the work failed (the summary says which, and where) |
| 2 | bad input or configuration: nothing was done |
| 3 | stopped by the error budget (`--max-failures`); run the same command again to resume |
| 130 / 143 | interrupted by SIGINT / SIGTERM; what was done is kept, run the same command again to resume |
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import typer
from pydantic import ValidationError

from codetool_kernel.errors import CodeToolError
from codetool_kernel.validation import describe_validation_error

OK = 0
SOME_FAILED = 1
BAD_INPUT = 2
BUDGET_SPENT = 3
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM

_received: list[int] = []
_reported: list[bool] = []


def note_signal(signum: int) -> None:
    """Remember that `signum` asked the process to stop (the exit status follows from it)."""
    _received.append(signum)


def interrupted_by() -> int | None:
    """The first stop signal this process received, if any."""
    return _received[0] if _received else None


def interrupt_exit_code() -> int:
    """130 after SIGINT, 143 after SIGTERM."""
    return 128 + (interrupted_by() or signal.SIGINT)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    note_signal(signum)
    raise KeyboardInterrupt


def install_stop_signals() -> None:
    """SIGINT and SIGTERM raise `KeyboardInterrupt` (also in a process that inherited SIGINT ignored)."""
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def fail(message: str, code: int) -> typer.Exit:
    """Print `error: message` on stderr; the `typer.Exit` to raise with `code`."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def one_error_line() -> Iterator[None]:
    """Turn a `CodeToolError` into `error: ...` on stderr and its exit code, a bad option into exit code 2."""
    try:
        yield
    except CodeToolError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except ValidationError as exc:
        raise fail(f"invalid option: {describe_validation_error(exc)}", BAD_INPUT) from None


def run_cli(command_line: typer.Typer, *, prog_name: str | None = None) -> None:
    """Run a command line under the exit-code policy; every error is one `error: ...` line on stderr."""
    install_stop_signals()
    code: int | str | None = OK
    try:
        command_line(prog_name=prog_name)  # typer exits itself: usage errors 2, KeyboardInterrupt 130
    except SystemExit as exit_:
        code = exit_.code
    except CodeToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except ValidationError as exc:
        print(f"error: invalid option: {describe_validation_error(exc)}", file=sys.stderr)
        code = BAD_INPUT
    except OSError as exc:  # a file system refusal no earlier check caught: still one line
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        code = SOME_FAILED
    except KeyboardInterrupt:
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns every KeyboardInterrupt into 130; SIGTERM's is 143
        code = interrupt_exit_code()
        if not _reported:
            print("interrupted", file=sys.stderr)
    sys.exit(code)


def report_interrupt(line: str) -> typer.Exit:
    """Print the one line saying what an interruption left and how to resume; the `typer.Exit` to raise."""
    _reported.append(True)
    typer.echo(line, err=True)
    return typer.Exit(interrupt_exit_code())
