"""Names and execution statuses of the nodes of a step tree, as the reference release writes them.

The root (the query itself) is `1`; the first step's candidates are `1-1`, `1-2`; `1-2-1` is the
first child of `1-2`. A node's step number is its count of `-`. Files written before this naming
called the first step's candidates `1`, `2` (one level up): `upgrade_paths` reads them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

ROOT = "1"
"""The query: the parent of the first step's candidates (never a step itself)."""

# `exec_res[path]["status"]` of a step, as in the reference: 0 its code ran cleanly.
STATUS_OK = 0
STATUS_ERROR = 1
STATUS_TOOL_FAILURE = 2

_NODE_NAME = re.compile(r"1(?:-[1-9]\d*)+")
_LEGACY_NAME = re.compile(r"[1-9]\d*(?:-[1-9]\d*)*")


def child_path(parent: str | None, index: int) -> str:
    """Name of the `index`-th (1-based) child of `parent` (None or `1`: the root)."""
    return f"{parent or ROOT}-{index}"


def step_of(path: str) -> int:
    """The step a node belongs to: its count of `-` (`1-2` is step 1, `1-2-1` step 2)."""
    return path.count("-")


def parent_of(path: str) -> str | None:
    """The parent step's name, or None when the parent is the root (a first-step candidate)."""
    parent = path.rsplit("-", 1)[0]
    return None if parent == ROOT else parent


def ancestors_of(path: str) -> list[str]:
    """The steps above `path`, first step first (empty for a first-step candidate)."""
    parts = path.split("-")
    return ["-".join(parts[:end]) for end in range(2, len(parts))]


def path_order(path: str) -> tuple[int, ...]:
    """Sort key putting names in depth-first order (`1-1`, `1-1-1`, `1-1-2`, `1-2`, ...)."""
    return tuple(int(part) for part in path.split("-"))


def is_node_name(path: str) -> bool:
    """Whether `path` names a step (`1-2`, `1-2-1`; not the root `1`)."""
    return bool(_NODE_NAME.fullmatch(path))


def is_legacy(paths: Iterable[str]) -> bool:
    """Whether a file's names use the old form: some step is named without a `-` (`1`, `2`)."""
    return any(isinstance(path, str) and "-" not in path and _LEGACY_NAME.fullmatch(path) for path in paths)


def upgrade_path(path: str) -> str:
    """The current name of an old-form name (`2-1` becomes `1-2-1`)."""
    return f"{ROOT}-{path}"


def own_step_text(path: str, whole_text: Mapping[str, str]) -> str:
    """A step's own text, given the reference's `content` (the whole path's text) of every node by name."""
    whole = whole_text.get(path, "")
    parent = parent_of(path)
    before = whole_text.get(parent, "") if parent else ""
    if before and whole.startswith(before):
        return whole[len(before) :]
    step = step_of(path)
    marker = f"[Step {step - 1} Finished]"
    if step > 1 and marker in whole:
        return whole.split(marker, 1)[1].lstrip("\n")
    return whole


def wrote_step(path: str, own_text: str) -> bool:
    """Whether a node's own text holds its step; the reference leaves it out for a candidate without code."""
    return f"[Step {step_of(path)} Finished]" in own_text
