"""Turning pydantic validation errors into the one-line messages CodeTool shows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


def describe_validation_error(exc: ValidationError, *, root: str = "value") -> str:
    """`where: what` for every problem, joined with `; ` so that one line reports them all."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or root
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


class FrozenModel(BaseModel):
    """Base of every settings record: immutable once built, and unknown keys are an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")
