"""`rm label`: collected trees in, scored trees, labelled sibling pairs and SFT data out."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from codetool_kernel.errors import DataError
from codetool_kernel.files import write_json_atomic
from rm.export import DEFAULT_DATASET_NAME, SftWriter, pair_examples
from rm.labels import LabelConfig, LabeledPair, NodeScore, score_tree, sibling_groups, sibling_pairs, tree_nodes
from rm.prompt import DEFAULT_ANSWER_WORDS
from rm.tree import DFS_DIR, PAIR_DIR, SCORED_DIR, SFT_DIR, CollectedTree, load_tree, query_file_stem

log = structlog.get_logger(__name__)

STATS_FILE = "label_stats.json"


class NothingRead(DataError):
    """No usable tree was found: a labelling run that would produce nothing."""


@dataclass
class LabelStats:
    """What `rm label` read, built and left out."""

    files: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    """Input files that could not be used, with the reason."""
    nodes: int = 0
    leaves: int = 0
    leaves_succeeded: int = 0
    sibling_groups: int = 0
    pairs: int = 0
    pair_reasons: Counter[str] = field(default_factory=Counter)
    """What decided each pair's labels: execution, hard, soft, latent or tie (both "no")."""
    labels: Counter[str] = field(default_factory=Counter)
    """Exported examples by label."""
    dropped: Counter[str] = field(default_factory=Counter)
    """Examples left out of the export, by reason."""

    @property
    def examples(self) -> int:
        return sum(self.labels.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "skipped": dict(self.skipped),
            "nodes": self.nodes,
            "leaves": self.leaves,
            "leaves_succeeded": self.leaves_succeeded,
            "sibling_groups": self.sibling_groups,
            "pairs": self.pairs,
            "pair_reasons": dict(self.pair_reasons),
            "examples": self.examples,
            "labels": {"yes": self.labels["yes"], "no": self.labels["no"]},
            "dropped": dict(self.dropped),
        }


def tree_files(in_dir: str | os.PathLike[str]) -> list[Path]:
    """The tree files under `in_dir` (its `dfs_data/` folder, or `in_dir` itself): ours or the reference's."""
    root = Path(in_dir)
    folder = root / DFS_DIR if (root / DFS_DIR).is_dir() else root
    if not folder.is_dir():
        raise NothingRead(f"{in_dir}: no such folder")
    files = sorted(folder.glob("*_path.json"))
    if not files:
        raise NothingRead(f"{folder}: no *_path.json files (run `python -m agent collect` first)")
    return files


def scored_json(tree: CollectedTree, scores: dict[str, NodeScore], config: LabelConfig) -> dict[str, Any]:
    """The tree with each `infer_path` entry's scores added under the reference field names (and our `tau`)."""
    data = tree.model_dump(mode="json")
    for entry in data["infer_path"]:
        score = scores[entry["path_name"]]
        entry.update(
            current_exec=score.current_exec,
            soft_estimate=score.soft,
            hard_estimate=score.hard,
            latent_reward=score.latent,
            tau=score.tau,
        )
    data["label_config"] = config.model_dump(mode="json")
    return data


def pair_json(scored: dict[str, Any], pairs: list[LabeledPair]) -> dict[str, Any]:
    """The reference `pair_path` file: each pair is its two scored `infer_path` entries, with their label added."""
    entries = {entry["path_name"]: entry for entry in scored["infer_path"]}
    pair_path = [
        [
            {**entries[pair.first], "label": pair.first_label, "pair_reason": pair.reason},
            {**entries[pair.second], "label": pair.second_label, "pair_reason": pair.reason},
        ]
        for pair in pairs
    ]
    return {
        "q_id": scored["q_id"],
        "query": scored["query"],
        "instruction": scored["instruction"],
        "pair_path": pair_path,
        "exec_res": scored["exec_res"],
        "api_docs": scored["api_docs"],
        "label_config": scored["label_config"],
    }


def label_trees(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: LabelConfig = LabelConfig(),
    *,
    output_chars: int = 2000,
    answer_words: tuple[str, str] = DEFAULT_ANSWER_WORDS,
    dataset_name: str = DEFAULT_DATASET_NAME,
) -> LabelStats:
    """Score every collected tree, pair and label siblings, export SFT data; a bad file is skipped and reported.

    Raises `NothingRead` (and writes nothing) when no file holds a usable tree.
    """
    out = Path(out_dir)
    stats = LabelStats()
    files = tree_files(in_dir)
    with SftWriter(out / SFT_DIR, dataset_name) as writer:
        for file in files:
            try:
                tree = load_tree(file)
            except DataError as exc:
                stats.skipped[file.name] = str(exc)
                log.warning("skipping a tree file", path=str(file), reason=str(exc))
                continue
            stats.files += 1
            scores = score_tree(tree_nodes(tree), config)
            pairs = sibling_pairs(scores, config)
            scored = scored_json(tree, scores, config)
            stem = query_file_stem(tree.q_id)
            write_json_atomic(out / SCORED_DIR / f"{stem}_scored.json", scored)
            write_json_atomic(out / PAIR_DIR / f"{stem}_pair.json", pair_json(scored, pairs))
            _count_tree(stats, tree, scores, pairs)
            exported = pair_examples(tree, pairs, output_chars=output_chars, answer_words=answer_words)
            stats.dropped.update(exported.dropped)
            for example in exported.examples:
                writer.add(example)
        if stats.files == 0:
            name, reason = next(iter(stats.skipped.items()))
            raise NothingRead(f"none of the {len(files)} tree files could be read; {name}: {reason}")
    stats.labels.update(writer.labels)
    if writer.repeats:
        stats.dropped["same prompt and answer seen before"] += writer.repeats
    write_json_atomic(out / STATS_FILE, stats.as_dict())
    return stats


def _count_tree(stats: LabelStats, tree: CollectedTree, scores: dict[str, NodeScore], pairs: list[LabeledPair]) -> None:
    leaves = [entry.path_name for entry in tree.infer_path if entry.is_leaf]
    stats.nodes += len(tree.infer_path)
    stats.leaves += len(leaves)
    stats.leaves_succeeded += sum(1 for path in leaves if scores[path].hard)
    stats.sibling_groups += sibling_groups(scores)
    stats.pairs += len(pairs)
    stats.pair_reasons.update(pair.reason for pair in pairs)
