"""Scoring a step tree from its leaves, and labelling sibling pairs "yes"/"no" (DESIGN.md, "Training the PRM").

For a node, with D the leaves below it (a leaf is its own only descendant leaf):
soft = share of D that succeeded, hard = 1 if any did, tau = sum over D of (leaf depth - node depth),
latent = alpha ** (1 - soft) * beta ** (tau / L).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from codetool_kernel.nodepaths import STATUS_OK, parent_of, path_order, step_of
from codetool_kernel.validation import FrozenModel
from rm.tree import CollectedTree

CodelessLeafRule = Literal["finished", "succeeded"]
TieBreak = Literal["latent", "both-no"]
PairReason = Literal["execution", "hard", "soft", "latent", "tie"]


class LabelConfig(FrozenModel):
    """Constants of the node scores and the rules for leaves without code and for ties."""

    alpha: float = Field(0.9, gt=0, le=1)
    beta: float = Field(0.95, gt=0, le=1)
    horizon: float = Field(20.0, gt=0, description="L: the step count that scales tau")
    codeless_leaf: CodelessLeafRule = "finished"
    """A step without code succeeds when it carries `[All Finished]` (`finished`), or always (`succeeded`,
    the reference's rule)."""
    tie_break: TieBreak = "latent"
    """When execution, hard and soft tie: the higher latent reward is "yes" (`latent`), or both are "no"
    (`both-no`, the reference's rule)."""


@dataclass(frozen=True)
class TreeNode:
    """What the scores need to know of one node."""

    path: str
    is_leaf: bool
    status: int
    has_code: bool
    finished: bool


@dataclass(frozen=True)
class NodeScore:
    current_exec: bool
    soft: float
    hard: int
    tau: float
    latent: float
    leaves: int


@dataclass(frozen=True)
class LabeledPair:
    """Two siblings that differ, each with its label; `first` is the one with the lower index."""

    first: str
    second: str
    first_label: str
    second_label: str
    reason: PairReason


def tree_nodes(tree: CollectedTree) -> list[TreeNode]:
    """The scoring view of a collected tree."""
    return [
        TreeNode(entry.path_name, entry.is_leaf, tree.exec_res[entry.path_name].status, entry.has_code, entry.finished)
        for entry in tree.infer_path
    ]


def step_succeeded(node: TreeNode, config: LabelConfig) -> bool:
    """Whether the step itself went right: its code ran cleanly, or (no code) by the codeless-leaf rule."""
    if node.has_code:
        return node.status == STATUS_OK
    return node.finished or config.codeless_leaf == "succeeded"


def score_tree(nodes: Iterable[TreeNode], config: LabelConfig = LabelConfig()) -> dict[str, NodeScore]:
    """The scores of every node, keyed by path."""
    by_path = {node.path: node for node in nodes}
    leaves_below: dict[str, list[TreeNode]] = {path: [] for path in by_path}
    for leaf in (node for node in by_path.values() if node.is_leaf):
        cursor: str | None = leaf.path
        while cursor is not None:
            leaves_below[cursor].append(leaf)
            cursor = parent_of(cursor)
    scores = {}
    for path, node in by_path.items():
        leaves = leaves_below[path]
        succeeded = sum(step_succeeded(leaf, config) for leaf in leaves)
        soft = succeeded / len(leaves) if leaves else 0.0
        tau = float(sum(step_of(leaf.path) - step_of(path) for leaf in leaves))
        scores[path] = NodeScore(
            current_exec=step_succeeded(node, config),
            soft=soft,
            hard=int(succeeded > 0),
            tau=tau,
            latent=config.alpha ** (1 - soft) * config.beta ** (tau / config.horizon),
            leaves=len(leaves),
        )
    return scores


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def differ(a: NodeScore, b: NodeScore) -> bool:
    """Whether two siblings are worth a pair: they differ in execution, hard, soft or latent value."""
    if a.current_exec != b.current_exec or a.hard != b.hard:
        return True
    return not _same(a.soft, b.soft) or not _same(a.latent, b.latent)


def label_pair(a: NodeScore, b: NodeScore, config: LabelConfig = LabelConfig()) -> tuple[str, str, PairReason]:
    """Labels of two differing siblings and what decided them.

    Exactly one executed: it is "yes". Otherwise the higher hard, then soft, then (tie_break
    `latent`) latent value is "yes"; with tie_break `both-no`, a tie on hard and soft labels both "no".
    """
    if a.current_exec != b.current_exec:
        return (*_yes_first(a.current_exec), "execution")
    if a.hard != b.hard:
        return (*_yes_first(a.hard > b.hard), "hard")
    if not _same(a.soft, b.soft):
        return (*_yes_first(a.soft > b.soft), "soft")
    if config.tie_break == "both-no" or _same(a.latent, b.latent):
        return "no", "no", "tie"
    return (*_yes_first(a.latent > b.latent), "latent")


def _yes_first(first_wins: bool) -> tuple[str, str]:
    return ("yes", "no") if first_wins else ("no", "yes")


def sibling_pairs(scores: Mapping[str, NodeScore], config: LabelConfig = LabelConfig()) -> list[LabeledPair]:
    """Every pair of siblings that differ, labelled, in depth-first order of the first sibling."""
    groups: dict[str | None, list[str]] = {}
    for path in sorted(scores, key=path_order):
        groups.setdefault(parent_of(path), []).append(path)
    pairs = []
    for siblings in groups.values():
        for first, second in itertools.combinations(siblings, 2):
            if differ(scores[first], scores[second]):
                first_label, second_label, reason = label_pair(scores[first], scores[second], config)
                pairs.append(LabeledPair(first, second, first_label, second_label, reason))
    return sorted(pairs, key=lambda pair: (path_order(pair.first), path_order(pair.second)))


def sibling_groups(paths: Iterable[str]) -> int:
    """How many nodes (the root included) have at least two children among `paths`."""
    counts: dict[str | None, int] = {}
    for path in paths:
        counts[parent_of(path)] = counts.get(parent_of(path), 0) + 1
    return sum(1 for count in counts.values() if count > 1)
