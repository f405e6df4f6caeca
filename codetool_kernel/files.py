"""Small file helpers used across packages."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from codetool_kernel.errors import DataError
from codetool_kernel.validation import describe_validation_error

M = TypeVar("M", bound=BaseModel)


def to_json(data: Any, *, indent: int | None = None, default: Callable[[Any], Any] | None = None) -> str:
    """`data` as strict JSON text (the one JSON writer of CodeTool): NaN and infinities are refused (`DataError`)."""
    try:
        return json.dumps(data, ensure_ascii=False, indent=indent, allow_nan=False, default=default)
    except ValueError as exc:
        raise DataError(f"refusing to write non-standard JSON ({exc})") from None


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    """Write strict JSON so that `path` holds either its old content or the complete new one, never half."""
    text = to_json(data, indent=indent)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class _NonStandardNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonStandardNumber(name)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning every way it can fail into one `DataError` line."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle, parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except _NonStandardNumber as exc:
        raise DataError(f"{path}: not valid JSON ({exc} is not a JSON number)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def read_model(path: str | os.PathLike[str], model: type[M], *, what: str) -> M:
    """Read a JSON file into a pydantic model; every problem is one `DataError` line naming `what` it should be."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: not {what} (a JSON {type(data).__name__})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"{path}: not {what} ({describe_validation_error(exc)})") from None
