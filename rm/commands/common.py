"""What the commands share: one error line and the exit code of `codetool.cli` for every `CodeToolError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from codetool.cli import BAD_INPUT, fail
from codetool.errors import CodeToolError
from codetool.validation import describe_validation_error


@contextmanager
def one_error_line() -> Iterator[None]:
    """Turn a `CodeToolError` into `error: ...` on stderr and its exit code, a bad option into exit code 2."""
    try:
        yield
    except CodeToolError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except ValidationError as exc:
        raise fail(f"invalid option: {describe_validation_error(exc)}", BAD_INPUT) from None
