"""Exceptions the runner raises inside the sandboxed code.

The limit exceptions derive from `BaseException` so that a plain `except Exception` in
the code cannot swallow them; the runner also remembers the first limit hit, so an
execution that swallows one anyway still ends as failed.
"""

from __future__ import annotations


class SandboxLimitExceeded(BaseException):
    """A per-execution bound was reached; `timed_out` says whether it was about time."""

    timed_out = False


class ExecutionTimeout(SandboxLimitExceeded):
    timed_out = True


class CpuLimitExceeded(SandboxLimitExceeded):
    timed_out = True


class OutputLimitExceeded(SandboxLimitExceeded):
    pass


class ApiCallLimitExceeded(SandboxLimitExceeded):
    pass


class CellRejected(Exception):
    """A cell that cannot run at all: a syntax error or a construct the engine refuses."""

    def __init__(self, error_type: str, message: str, filename: str, lineno: int | None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.filename = filename
        self.lineno = lineno
