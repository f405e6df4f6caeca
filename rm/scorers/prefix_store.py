"""A least-recently-used store of computed prompt prefixes, bounded by the tokens it holds.

The next agent step's PRM prompt extends the previous step's (the chosen step and its output are
appended to the system prompt), so the longest stored prefix of a new prompt spares recomputing it.
Entries are kept in sorted token order: the entry sharing the longest prefix with a prompt is one of
the two next to where the prompt would sort, so a lookup compares two entries, not all.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rm.scorers.prefix_groups import common_prefix_len

Value = TypeVar("Value")


@dataclass(eq=False)
class _Entry(Generic[Value]):
    tokens: list[int]
    value: Value
    last_used: int = field(default=0)


class PrefixStore(Generic[Value]):
    """Values (e.g. key/value caches) of token prefixes, the least recently used dropped first.

    `crop(value, length)` must give the value of the first `length` tokens of a stored prefix.
    """

    def __init__(self, budget_tokens: int, min_tokens: int, crop: Callable[[Value, int], Value]) -> None:
        self._budget = budget_tokens
        self._min_tokens = min_tokens
        self._crop = crop
        self._entries: list[_Entry[Value]] = []  # sorted by tokens
        self._clock = itertools.count(1)
        self._held = 0
        self._hits = 0
        self._reused_tokens = 0

    def match_length(self, tokens: Sequence[int]) -> int:
        """How many leading tokens of `tokens` `longest` would give (0 below `min_tokens`); changes nothing."""
        return self._best(list(tokens))[1]

    def longest(self, tokens: Sequence[int]) -> tuple[int, Value | None]:
        """(n, value of the first n tokens of `tokens`) for the longest stored match, or (0, None).

        A match shorter than `min_tokens` does not count.
        """
        best, length = self._best(list(tokens))
        if best is None:
            return 0, None
        best.last_used = next(self._clock)
        self._hits += 1
        self._reused_tokens += length
        return length, self._crop(best.value, length)

    def put(self, tokens: Sequence[int], value: Value) -> None:
        """Store `value` for `tokens` (replacing the same tokens), dropping the least used beyond the budget."""
        tokens = list(tokens)
        if len(tokens) > self._budget:
            return
        at = bisect.bisect_left(self._entries, tokens, key=lambda entry: entry.tokens)
        if at < len(self._entries) and self._entries[at].tokens == tokens:
            self._held -= len(self._entries.pop(at).tokens)
        self._entries.insert(at, _Entry(tokens, value, next(self._clock)))
        self._held += len(tokens)
        while self._held > self._budget:
            oldest = min(range(len(self._entries)), key=lambda number: self._entries[number].last_used)
            self._held -= len(self._entries.pop(oldest).tokens)

    def held_tokens(self) -> int:
        return self._held

    def counters(self) -> dict[str, int]:
        return {
            "prefix_cache_hits": self._hits,
            "prefix_cache_tokens_reused": self._reused_tokens,
            "prefix_cache_tokens_held": self._held,
        }

    def _best(self, tokens: list[int]) -> tuple[_Entry[Value] | None, int]:
        at = bisect.bisect_left(self._entries, tokens, key=lambda entry: entry.tokens)
        best, best_length = None, 0
        for entry in self._entries[max(at - 1, 0) : at + 1]:
            length = common_prefix_len(entry.tokens, tokens)
            if length > best_length:
                best, best_length = entry, length
        return (best, best_length) if best_length >= self._min_tokens else (None, 0)
