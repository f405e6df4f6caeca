"""The process-supervision files on disk: one step tree per query, in the reference release's layout.

`OUT/dfs_data/{q_id}_path.json` holds the reference fields (`q_id`, `query`, `instruction`,
`infer_path` with `path_name`/`content`/`is_leaf`, `exec_res[path]` with `code`/`res`/`status`)
and ours beside them: the API docs the PRM prompt needs, each step's own text (`step_content`;
the reference `content` is the text of the whole path), and every node's full record (`nodes`).
`rm label` adds the scores to `infer_path` entries (`path_scored/{q_id}_scored.json`) and writes the
labelled sibling pairs (`pair_path/{q_id}_pair.json`).

Nodes are named as the reference names them (`codetool_kernel.nodepaths`): the root (the query) is `1`, the
first step's candidates `1-1`, `1-2`. `load_tree` also reads trees made by the reference release
(our fields derived from theirs) and our files from before that naming (`1`, `2` for the first step).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from codetool_kernel.files import read_model
from codetool_kernel.nodepaths import (
    is_legacy,
    is_node_name,
    own_step_text,
    parent_of,
    path_order,
    step_of,
    upgrade_path,
    wrote_step,
)

TREE_SCHEMA_VERSION = 1
DFS_DIR = "dfs_data"
SCORED_DIR = "path_scored"
PAIR_DIR = "pair_path"
SFT_DIR = "sft"

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
REFERENCE_DOCS_END = "Based on provided APIs"
"""The reference's PRM prompt takes the part of the instruction before these words as API information."""

def query_file_stem(q_id: int | str) -> str:
    """`q_id` made safe to use in a file name."""
    return _UNSAFE_FILE_CHARS.sub("_", str(q_id)) or "_"


def tree_file(out_dir: str | os.PathLike[str], q_id: int | str) -> Path:
    """Where `agent collect` writes the tree of query `q_id` under `out_dir`."""
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
    step_code: str | None = None
    """Ours: the step's own code (`code` is the whole program, as the reference keeps it)."""


class CollectedTree(BaseModel):
    """One query's full step tree, as written by `agent collect`."""

    model_config = ConfigDict(extra="allow")

    q_id: int | str
    """The benchmark's own query id (an int for StableToolBench)."""
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

    @model_validator(mode="before")
    @classmethod
    def _read_other_layouts(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("infer_path"), list):
            return data
        if not isinstance(data.get("exec_res"), dict):
            return data
        return _with_our_fields(_with_current_names(data))

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
            children.setdefault(parent_of(entry.path_name), []).append(entry.path_name)
        return children


def _tree_problem(tree: CollectedTree) -> str | None:
    """What makes the tree unusable, or None."""
    paths = [entry.path_name for entry in tree.infer_path]
    if not paths:
        return "infer_path is empty"
    known = set(paths)
    if len(known) != len(paths):
        return "infer_path lists a path twice"
    with_children = {parent_of(path) for path in paths}
    for entry in tree.infer_path:
        path = entry.path_name
        if not is_node_name(path):
            return f"path_name {path!r} is not like 1-2-1"
        if path not in tree.exec_res:
            return f"exec_res has no entry for {path}"
        parent = parent_of(path)
        if parent is not None and parent not in known:
            return f"node {path} has no parent {parent}"
        if entry.is_leaf and path in with_children:
            return f"leaf {path} has children"
        if not entry.is_leaf and path not in with_children:
            return f"node {path} is not a leaf but was never expanded"
    return None


def _with_current_names(data: dict[str, Any]) -> dict[str, Any]:
    """A tree file of ours from before the current names, renamed (`2-1` becomes `1-2-1`)."""
    entries = data["infer_path"]
    if not is_legacy(entry.get("path_name") for entry in entries if isinstance(entry, dict)):
        return data

    def rename(name: Any) -> Any:
        return upgrade_path(name) if isinstance(name, str) else name

    nodes = [
        {**node, "path": rename(node.get("path")), "parent": rename(node.get("parent"))} if isinstance(node, dict) else node
        for node in data.get("nodes") or []
    ]
    return {
        **data,
        "infer_path": [{**e, "path_name": rename(e.get("path_name"))} if isinstance(e, dict) else e for e in entries],
        "exec_res": {rename(key): value for key, value in data["exec_res"].items()},
        "nodes": nodes,
    }


def _with_our_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A reference-made tree (`dfs_data`) given the fields it lacks, derived from the ones it has.

    A step's own text is its `content` less its parent's; a candidate without code is the node whose
    `content` does not reach its own step (the reference keeps that completion in `exec_res[...]["res"]`);
    the API information is the instruction's part before "Based on provided APIs", as the reference's
    PRM prompt takes it; a node listed as not a leaf but never expanded is a leaf.
    """
    entries = data["infer_path"]
    if not all(isinstance(entry, dict) for entry in entries) or any("step_content" in entry for entry in entries):
        return data
    whole = {e["path_name"]: str(e.get("content") or "") for e in entries if isinstance(e.get("path_name"), str)}
    parents = {parent_of(name) for name in whole}
    filled = []
    for entry in entries:
        name = entry.get("path_name")
        if not isinstance(name, str) or "step_content" in entry:
            filled.append(entry)
            continue
        own = own_step_text(name, whole)
        has_code = wrote_step(name, own)
        record = data["exec_res"].get(name)
        text = own if has_code or not isinstance(record, dict) else str(record.get("res") or "")
        filled.append(
            {
                **entry,
                "step_content": text,
                "has_code": has_code,
                "finished": "[All Finished]" in text,
                "is_leaf": bool(entry.get("is_leaf")) or name not in parents,
            }
        )
    siblings: dict[str | None, int] = {}
    for name in whole:
        siblings[parent_of(name)] = siblings.get(parent_of(name), 0) + 1
    instruction = str(data.get("instruction") or "")
    return {
        "api_docs": instruction.split(REFERENCE_DOCS_END, 1)[0].strip(),
        "n": max(siblings.values(), default=1),
        "max_depth": max((step_of(name) for name in whole), default=1),
        **data,
        "infer_path": filled,
    }


def load_tree(path: str | os.PathLike[str]) -> CollectedTree:
    """Read and check a collected (or scored) tree file; every problem is one `DataError` line."""
    return read_model(path, CollectedTree, what="a collected tree")
