"""Which tool provider a command or a run asked for, and building it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codetool_kernel.paths import check_input
from tools import ToolProvider, create_provider


@dataclass(frozen=True)
class ToolsetChoice:
    """Which tool provider to build, with its options."""

    name: str
    spec: Path | None = None
    cache: Path | None = None
    virtual_url: str | None = None
    tools_dir: Path | None = None


def check_toolset_paths(choice: ToolsetChoice) -> ToolsetChoice:
    """`choice` if the files it names exist (`ConfigError` before any work otherwise)."""
    for option, path in (("--spec", choice.spec), ("--cache", choice.cache), ("--tools-dir", choice.tools_dir)):
        if path is not None:
            check_input(path, option)
    return choice


def open_provider(choice: ToolsetChoice) -> ToolProvider:
    """The provider for `choice`, not started yet (use it with `async with`)."""
    options: dict[str, Any] = {}
    if choice.name == "tmdb":
        if choice.spec is not None:
            options["spec_path"] = str(choice.spec)
        if choice.cache is not None:
            options["cache_dir"] = str(choice.cache)
    elif choice.name == "stabletoolbench":
        for key, value in (("cache_dir", choice.cache), ("virtual_url", choice.virtual_url), ("tools_dir", choice.tools_dir)):
            if value is not None:
                options[key] = str(value)
    return create_provider(choice.name, **options)
