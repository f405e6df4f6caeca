"""Generative SFT data from labelled sibling pairs: one judging prompt per candidate, target "yes"/"no".

Prompts are built with `rm.prompt.build_prm_messages` exactly as the live agent builds them (API
docs of the tool set, the query, the chosen ancestors' step text and output, the candidate step), so
the PRM is trained on the prompts it is later asked. Two forms are written: LLaMA-Factory's sharegpt
JSON (with its `dataset_info.json` entry) and JSON lines for `rm train`, which keep the pair ids.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from codetool_kernel.errors import DataError
from codetool_kernel.files import to_json, write_json_atomic
from codetool_kernel.nodepaths import ancestors_of
from rm.labels import LabeledPair
from rm.prompt import DEFAULT_ANSWER_WORDS, PriorStep, build_prm_messages
from rm.tree import CollectedTree

SHAREGPT_FILE = "prm_sft.json"
TRAIN_FILE = "prm_train.jsonl"
DATASET_INFO_FILE = "dataset_info.json"
DEFAULT_DATASET_NAME = "codetool_prm"


@dataclass(frozen=True)
class SftExample:
    """One judging prompt and the word the PRM should answer."""

    system: str
    candidate: str
    label: str
    """`yes` or `no`: whether the candidate is the better sibling."""
    answer: str
    """The word to generate (the first or second answer word)."""
    q_id: int | str
    path: str
    pair: str
    """`q_id:first|second`, shared by the two examples of one sibling pair."""

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.candidate}]

    def sharegpt(self) -> dict[str, Any]:
        """The LLaMA-Factory sharegpt record."""
        return {
            "conversations": [{"from": "human", "value": self.candidate}, {"from": "gpt", "value": self.answer}],
            "system": self.system,
        }

    def record(self) -> dict[str, Any]:
        """The `rm train` record."""
        return {
            "messages": self.messages(),
            "answer": self.answer,
            "label": self.label,
            "pair": self.pair,
            "q_id": self.q_id,
            "path": self.path,
        }


@dataclass
class ExportResult:
    examples: list[SftExample] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    """Why examples were left out, with counts."""


def pair_examples(
    tree: CollectedTree,
    pairs: Iterable[LabeledPair],
    *,
    output_chars: int = 2000,
    answer_words: tuple[str, str] = DEFAULT_ANSWER_WORDS,
) -> ExportResult:
    """The two examples of every pair; a pair whose siblings wrote the same step is dropped (its labels contradict)."""
    result = ExportResult()
    for pair in pairs:
        first, second = tree.entry(pair.first), tree.entry(pair.second)
        if first.step_content.strip() == second.step_content.strip():
            result.dropped["siblings wrote the same step"] += 2
            continue
        previous = [
            PriorStep(tree.entry(path).step_content, tree.exec_res[path].res) for path in ancestors_of(pair.first)
        ]
        pair_id = f"{tree.q_id}:{pair.first}|{pair.second}"
        for entry, label in ((first, pair.first_label), (second, pair.second_label)):
            messages = build_prm_messages(
                api_docs=tree.api_docs,
                query=tree.query,
                previous=previous,
                candidate=entry.step_content,
                output_chars=output_chars,
                answer_words=answer_words,
            )
            result.examples.append(
                SftExample(
                    system=messages[0]["content"],
                    candidate=messages[1]["content"],
                    label=label,
                    answer=answer_words[0] if label == "yes" else answer_words[1],
                    q_id=tree.q_id,
                    path=entry.path_name,
                    pair=pair_id,
                )
            )
    return result


def dataset_info_entry(file_name: str = SHAREGPT_FILE) -> dict[str, Any]:
    """LLaMA-Factory's `dataset_info.json` entry for the sharegpt file."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
    }


class SftWriter:
    """Streams examples to the sharegpt JSON and the `rm train` JSON lines, leaving repeats out.

    `with SftWriter(folder) as writer: writer.add(example)`; the files (and `dataset_info.json`)
    appear complete when the block ends without error, and not at all otherwise.
    """

    def __init__(self, out_dir: str | os.PathLike[str], dataset_name: str = DEFAULT_DATASET_NAME) -> None:
        self.out_dir = Path(out_dir)
        self.dataset_name = dataset_name
        self.labels: Counter[str] = Counter()
        self.repeats = 0
        self._seen: set[bytes] = set()
        self._files: dict[str, TextIO] = {}

    def __enter__(self) -> SftWriter:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (SHAREGPT_FILE, TRAIN_FILE):
            self._files[name] = open(self._temporary(name), "w", encoding="utf-8")  # noqa: SIM115
        self._files[SHAREGPT_FILE].write("[")
        return self

    def add(self, example: SftExample) -> bool:
        """Write `example` unless the same prompt with the same answer was written before."""
        key = hashlib.sha256("\0".join((example.system, example.candidate, example.answer)).encode()).digest()
        if key in self._seen:
            self.repeats += 1
            return False
        self._seen.add(key)
        separator = "\n" if not self.labels else ",\n"
        self._files[SHAREGPT_FILE].write(separator + to_json(example.sharegpt()))
        self._files[TRAIN_FILE].write(to_json(example.record()) + "\n")
        self.labels[example.label] += 1
        return True

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._files[SHAREGPT_FILE].write("\n]\n")
        for handle in self._files.values():
            handle.close()
        for name in self._files:
            if exc_type is None:
                os.replace(self._temporary(name), self.out_dir / name)
            else:
                self._temporary(name).unlink(missing_ok=True)
        if exc_type is None:
            write_json_atomic(self.out_dir / DATASET_INFO_FILE, {self.dataset_name: dataset_info_entry()})

    def _temporary(self, name: str) -> Path:
        return self.out_dir / f".{name}.tmp"


def read_train_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of an `rm train` JSON-lines file, each checked for the fields training needs."""
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                _check_record(record, f"{path}:{number}")
                records.append(record)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not records:
        raise DataError(f"{path}: holds no examples")
    return records


def _check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object")
    messages = record.get("messages")
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
    ):
        raise DataError(f"{where}: `messages` must be a list of {{role, content}} objects")
    if record.get("label") not in ("yes", "no"):
        raise DataError(f"{where}: `label` must be yes or no, got {record.get('label')!r}")
    for key in ("answer", "pair"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise DataError(f"{where}: `{key}` is missing")
