"""The least-recently-used store of computed prefixes (values here: the token lists themselves)."""

from __future__ import annotations

import random

from rm.scorers.prefix_groups import common_prefix_len
from rm.scorers.prefix_store import PrefixStore


def _store(budget: int = 100, min_tokens: int = 4) -> PrefixStore[list[int]]:
    return PrefixStore(budget, min_tokens, crop=lambda value, length: value[:length])


def test_the_longest_stored_match_comes_back_cropped_to_the_shared_part() -> None:
    store = _store()
    store.put(list(range(10)), list(range(10)))
    store.put(list(range(6)) + [99, 98], list(range(6)) + [99, 98])
    assert store.longest(list(range(8)) + [50]) == (8, list(range(8)))
    assert store.longest(list(range(6)) + [99, 5]) == (7, list(range(6)) + [99])
    assert store.counters()["prefix_cache_hits"] == 2 and store.counters()["prefix_cache_tokens_reused"] == 15


def test_a_match_shorter_than_min_tokens_is_no_match() -> None:
    store = _store(min_tokens=4)
    store.put([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert store.longest([1, 2, 3, 9]) == (0, None)
    assert store.counters()["prefix_cache_hits"] == 0


def test_storing_the_same_tokens_again_replaces_the_entry() -> None:
    store = _store()
    store.put([1, 2, 3, 4], [0, 0, 0, 0])
    store.put([1, 2, 3, 4], [1, 2, 3, 4])
    assert store.held_tokens() == 4
    assert store.longest([1, 2, 3, 4, 7]) == (4, [1, 2, 3, 4])


def test_the_best_match_is_found_among_many_sorted_entries() -> None:
    store = _store(budget=1000)
    for first in (5, 1, 9, 3, 7):
        for second in (2, 8, 4):
            store.put([first, second] + [0] * 6, [first, second])
    assert store.match_length([3, 4, 0, 0, 0, 1]) == 5
    assert store.match_length([3, 5, 0, 0, 0]) == 0  # shares only one token
    assert store.longest([9, 8] + [0] * 10) == (8, [9, 8])


def test_beyond_the_budget_the_least_recently_used_goes_first() -> None:
    store = _store(budget=12)
    first, second, third = [1] * 5, [2] * 5, [3] * 5
    store.put(first, first)
    store.put(second, second)
    assert store.longest(first + [0]) == (5, first)  # first is now the most recently used
    store.put(third, third)
    assert store.held_tokens() == 10
    assert store.longest(second) == (0, None)
    assert store.longest(first) == (5, first) and store.longest(third) == (5, third)


def test_an_entry_larger_than_the_budget_or_a_zero_budget_stores_nothing() -> None:
    store = _store(budget=3)
    store.put([1, 2, 3, 4], [1, 2, 3, 4])
    assert store.held_tokens() == 0 and store.longest([1, 2, 3, 4]) == (0, None)


def test_lookups_agree_with_comparing_every_entry() -> None:
    rng = random.Random(7)
    store = _store(budget=10_000, min_tokens=1)
    stored = [[rng.randint(0, 2) for _ in range(rng.randint(1, 12))] for _ in range(60)]
    for tokens in stored:
        store.put(tokens, tokens)
    for _ in range(300):
        query = [rng.randint(0, 2) for _ in range(rng.randint(1, 12))]
        assert store.match_length(query) == max(common_prefix_len(tokens, query) for tokens in stored)
