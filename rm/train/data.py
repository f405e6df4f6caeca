"""Training examples for the PRM: held-out split by query, prompts tokenized as the scorer renders them.

An example is the judging prompt (chat template with the generation prompt, exactly what
`rm serve` scores) and one target token, the answer word; the loss is read at the last prompt
position only, which is the position the scorer reads.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codetool_kernel.errors import DataError
from rm.errors import ScoringInputError
from rm.scorers.chat import render_prompt


@dataclass(frozen=True)
class Encoded:
    """One tokenized example and what evaluation needs to know of it."""

    input_ids: list[int]
    target: int
    label: str
    pair: str


def split_by_query(
    records: Sequence[dict[str, Any]], eval_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, eval) with whole queries held out, so no query's steps are seen in both."""
    groups = sorted({str(record.get("q_id") or record["pair"]) for record in records})
    if eval_fraction <= 0 or len(groups) < 2:
        return list(records), []
    random.Random(seed).shuffle(groups)
    held_out = set(groups[: max(1, math.floor(len(groups) * eval_fraction))])
    train = [r for r in records if str(r.get("q_id") or r["pair"]) not in held_out]
    evaluation = [r for r in records if str(r.get("q_id") or r["pair"]) in held_out]
    return train, evaluation


def check_answers(records: Sequence[dict[str, Any]], answer_words: tuple[str, str]) -> None:
    """Raise `DataError` unless every example answers the yes or no word its label asks for."""
    for record in records:
        word = answer_words[0] if record["label"] == "yes" else answer_words[1]
        if record["answer"] != word:
            raise DataError(
                f"an example of pair {record['pair']} answers {record['answer']!r} but the answer words are"
                f" {answer_words[0]}/{answer_words[1]}; pass the words it was exported with (--answer-words)"
            )


def encode(
    records: Sequence[dict[str, Any]],
    tokenizer: Any,
    answer_ids: tuple[int, int],
    cutoff_len: int,
    dropped: Counter[str],
) -> list[Encoded]:
    """Tokenized examples; prompts longer than `cutoff_len` tokens are counted in `dropped` and left out."""
    encoded = []
    for record in records:
        try:
            prompt = render_prompt(tokenizer, record["messages"], cutoff_len)
        except ScoringInputError:
            dropped["prompt longer than cutoff_len"] += 1
            continue
        target = answer_ids[0] if record["label"] == "yes" else answer_ids[1]
        encoded.append(Encoded(prompt, target, record["label"], record["pair"]))
    return encoded


class LeftPaddingCollator:
    """Batches prompts left-padded, with the positions the scorer uses; `labels` holds one target id per row."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: Sequence[Encoded]) -> dict[str, Any]:
        import torch

        width = max(len(item.input_ids) for item in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, item in enumerate(batch):
            input_ids[row, width - len(item.input_ids) :] = torch.tensor(item.input_ids, dtype=torch.long)
            attention_mask[row, width - len(item.input_ids) :] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": (attention_mask.cumsum(dim=1) - 1).clamp(min=0),
            "labels": torch.tensor([item.target for item in batch], dtype=torch.long),
        }
