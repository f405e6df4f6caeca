"""How a cell is compiled and which globals it gets: the `plain` and `restricted` engines."""

from __future__ import annotations

import builtins
import sys
from types import CodeType
from typing import Any, Protocol, TextIO

from . import requests_shim
from .errors import CellRejected

MODES = ("restricted", "plain")


class Engine(Protocol):
    """Compiles cells and builds the namespace they run in."""

    mode: str

    def compile(self, source: str, filename: str) -> CodeType:
        """Bytecode for `source`; `CellRejected` when it cannot run at all."""
        ...

    def new_globals(self, output: TextIO, preset: dict[str, Any]) -> dict[str, Any]:
        """A fresh namespace holding `preset`, printing to `output`."""
        ...


def syntax_rejection(exc: SyntaxError, filename: str) -> CellRejected:
    """The `CellRejected` for a Python syntax error."""
    return CellRejected(type(exc).__name__, exc.msg or "invalid syntax", filename, exc.lineno)


class PlainEngine:
    """Ordinary `exec`: the process or container around the runner is the boundary."""

    mode = "plain"

    def __init__(self) -> None:
        sys.modules["requests"] = requests_shim
        sys.modules["requests.exceptions"] = requests_shim.exceptions

    def compile(self, source: str, filename: str) -> CodeType:
        try:
            return compile(source, filename, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise syntax_rejection(exc, filename) from None

    def new_globals(self, output: TextIO, preset: dict[str, Any]) -> dict[str, Any]:
        return {"__name__": "__main__", "__builtins__": builtins, **preset}


def load_engine(mode: str) -> Engine:
    """The engine for `mode`; RestrictedPython is imported only for `restricted`."""
    if mode == "plain":
        return PlainEngine()
    if mode == "restricted":
        from .policy import RestrictedEngine

        return RestrictedEngine()
    raise ValueError(f"unknown runner mode {mode!r}; choose one of {', '.join(MODES)}")
