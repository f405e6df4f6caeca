"""What the commands share: one error line and exit code 1 for every `CodeToolError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError

from codetool.errors import CodeToolError
from codetool.validation import describe_validation_error


@contextmanager
def one_error_line() -> Iterator[None]:
    """Turn a `CodeToolError` into `error: ...` on stderr and exit code 1, a bad option into exit code 2."""
    try:
        yield
    except CodeToolError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValidationError as exc:
        typer.echo(f"error: invalid option: {describe_validation_error(exc)}", err=True)
        raise typer.Exit(2) from None
