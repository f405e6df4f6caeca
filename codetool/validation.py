"""Turning pydantic validation errors into the one-line messages CodeTool shows."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, *, root: str = "value") -> str:
    """`where: what` for the first problem, and how many more there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or root
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"
