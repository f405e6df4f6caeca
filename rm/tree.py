"""The process-supervision files on disk: one step tree per query, in the reference release's layout.

`OUT/dfs_data/{q_id}_path.json` holds the reference fields (`q_id`, `query`, `instruction`,
`infer_path` with `path_name`/`content`/`is_leaf`, `exec_res[path]` with `code`/`res`/`status`)
and ours beside them: the API docs the PRM prompt needs, each step's own text (`step_content`;
the reference `content` is the text of the whole path), and every node's full record (`nodes`).
`rm label` adds the scores to `infer_path` entries (`path_scored/{q_id}_scored.json`) and writes the
labelled sibling pairs (`pair_path/{q_id}_pair.json`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from codetool.files import read_model

TREE_SCHEMA_VERSION = 1
DFS_DIR = "dfs_data"
SCORED_DIR = "path_scored"
PAIR_DIR = "pair_path"
SFT_DIR = "sft"

EXEC_OK = 0
"""`exec_res[path]["status"]` of a step whose code ran cleanly (an exit code, as in the reference)."""

_PATH_NAME = re.compile(r"[1-9]\d*(?:-[1-9]\d*)*")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def path_depth(path: str) -> int:
    """Depth of a node: `1` and `2` are children of the root (depth 1), `1-2` has depth 2."""
    return path.count("-") + 1


def parent_path(path: str) -> str | None:
    """Path of the parent node, None for a child of the root."""
    return path.rsplit("-", 1)[0] if "-" in path else None


def path_order(path: str) -> tuple[int, ...]:
    """Sort key putting paths in depth-first order (`1`, `1-1`, `1-1-1`, `1-2`, `2`, ...)."""
    return tuple(int(part) for part in path.split("-"))


def ancestor_paths(path: str) -> list[str]:
    """Paths from the root's child down to the parent of `path` (empty for a child of the root)."""
    parts = path.split("-")
    return ["-".join(parts[:end]) for end in range(1, len(parts))]


def query_file_stem(q_id: str) -> str:
    """`q_id` made safe to use in a file name."""
    return _UNSAFE_FILE_CHARS.sub("_", q_id) or "_"


def tree_file(out_dir: str | os.PathLike[str], q_id: str) -> Path:
    """Where `rm collect` writes the tree of query `q_id` under `out_dir`."""
    return Path(out_dir) / DFS_DIR / f"{query_file_stem(q_id)}_path.json"


class PathEntry(BaseModel):
    """One node as listed in `infer_path`; scoring fields are added by `rm label`."""

    model_config = ConfigDict(extra="allow")

    path_name: str
    content: str
    """The text of the whole path: every step from the first down to this one (reference meaning)."""
    is_leaf: bool
    step_content: str
    """This step's own text, as fed back to the policy and shown to the PRM."""
    has_code: bool
    finished: bool
    """The step carries `[All Finished]`."""


class ExecRecord(BaseModel):
    """`exec_res[path]`: the program that ran (replayed ancestors, then this step), its output and status."""

    model_config = ConfigDict(extra="allow")

    code: str
    res: str
    status: int


class CollectedTree(BaseModel):
    """One query's full step tree, as written by `rm collect`."""

    model_config = ConfigDict(extra="allow")

    q_id: str
    query: str
    instruction: str
    infer_path: list[PathEntry]
    exec_res: dict[str, ExecRecord]
    schema_version: int = TREE_SCHEMA_VERSION
    toolset: str = ""
    api_docs: str
    model: str = ""
    n: int
    max_depth: int
    usage: dict[str, int] = {}
    duration_s: float = 0.0
    nodes: list[dict[str, Any]] = []
    """Every node's full record (`agent.trajectory.StepNode`): raw completion, stdout, error, API calls."""

    @model_validator(mode="after")
    def _consistent(self) -> CollectedTree:
        problem = _tree_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def entry(self, path: str) -> PathEntry:
        for entry in self.infer_path:
            if entry.path_name == path:
                return entry
        raise KeyError(path)

    def children(self) -> dict[str | None, list[str]]:
        """Child paths of every node (key None: the root), in sibling order."""
        children: dict[str | None, list[str]] = {}
        for entry in sorted(self.infer_path, key=lambda e: path_order(e.path_name)):
            children.setdefault(parent_path(entry.path_name), []).append(entry.path_name)
        return children


def _tree_problem(tree: CollectedTree) -> str | None:
    """What makes the tree unusable, or None."""
    paths = [entry.path_name for entry in tree.infer_path]
    if not paths:
        return "infer_path is empty"
    known = set(paths)
    if len(known) != len(paths):
        return "infer_path lists a path twice"
    with_children = {parent_path(path) for path in paths}
    for entry in tree.infer_path:
        path = entry.path_name
        if not _PATH_NAME.fullmatch(path):
            return f"path_name {path!r} is not like 1-2-1"
        if path not in tree.exec_res:
            return f"exec_res has no entry for {path}"
        parent = parent_path(path)
        if parent is not None and parent not in known:
            return f"node {path} has no parent {parent}"
        if entry.is_leaf and path in with_children:
            return f"leaf {path} has children"
        if not entry.is_leaf and path not in with_children:
            return f"node {path} is not a leaf but was never expanded"
    return None


def load_tree(path: str | os.PathLike[str]) -> CollectedTree:
    """Read and check a collected (or scored) tree file; every problem is one `DataError` line."""
    return read_model(path, CollectedTree, what="a collected tree")
