"""Hand-built step trees with known scores, written in the layout `agent collect` writes."""

from __future__ import annotations

from typing import NamedTuple

from codetool_kernel.nodepaths import ancestors_of
from rm.labels import TreeNode
from rm.tree import CollectedTree, ExecRecord, PathEntry


class Node(NamedTuple):
    is_leaf: bool
    has_code: bool
    status: int
    finished: bool = False


OK, RAISED = 0, 1


def scoring_nodes(spec: dict[str, Node]) -> list[TreeNode]:
    return [TreeNode(path, node.is_leaf, node.status, node.has_code, node.finished) for path, node in spec.items()]


def step_text(path: str, node: Node) -> str:
    depth = path.count("-")
    body = f"```python\nprint('step {path}')\n```\n" if node.has_code else f"I answer {path} in words.\n"
    tail = "[All Finished]\n" if node.finished else ""
    return f"##Step {depth}: step {path}\n{body}{tail}[Step {depth} Finished]\n"


def collected_tree(spec: dict[str, Node], q_id: str = "q1", api_docs: str = "API 1: get_weather") -> CollectedTree:
    """A tree file's content: every node's step text names its path, its output says whether it ran."""
    infer_path, exec_res = [], {}
    for path, node in spec.items():
        chain = [*ancestors_of(path), path]
        infer_path.append(
            PathEntry(
                path_name=path,
                content="".join(step_text(p, spec[p]) for p in chain),
                is_leaf=node.is_leaf,
                step_content=step_text(path, node),
                has_code=node.has_code,
                finished=node.finished,
            )
        )
        output = f"step {path}\n" if node.status == OK else "Error: KeyError: 'x'"
        exec_res[path] = ExecRecord(code=f"print('step {path}')\n", res=output, status=node.status)
    return CollectedTree(
        q_id=q_id, query=f"query {q_id}", instruction="instruction", infer_path=infer_path, exec_res=exec_res,
        api_docs=api_docs, n=2, max_depth=3,
    )  # fmt: skip


# Unbalanced, with leaves without code: 1-1 has a deep and a shallow branch, 1-2 two shallow leaves.
UNBALANCED = {
    "1-1": Node(False, True, OK),
    "1-1-1": Node(False, True, OK),
    "1-1-1-1": Node(True, True, OK, finished=True),
    "1-1-1-2": Node(True, False, RAISED, finished=True),  # a text final answer
    "1-1-2": Node(True, False, RAISED),  # prose without code or [All Finished]
    "1-2": Node(False, True, RAISED),
    "1-2-1": Node(True, True, RAISED, finished=True),
    "1-2-2": Node(True, True, OK, finished=True),
}
