"""Grouping the prompts of a micro-batch by the token prefix they share (pure Python, no torch).

Sorted token lists put prompts with long common prefixes next to each other, and the common prefix
of a run of sorted prompts is the shortest common prefix of its neighbouring pairs. The plan cuts
the sorted order into runs so that the fewest prompt tokens are computed: a run of two or more
computes its common prefix once (less what the prefix store already holds) plus each member's
suffix; a lone prompt computes what the store does not hold, or all of itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rm.config import PrefixSharingConfig


@dataclass(frozen=True)
class PrefixGroup:
    """Prompts (indices into the batch) whose first `prefix_len` tokens are run once or come from the store.

    A group of one is a prompt whose first `prefix_len` tokens the store holds.
    """

    members: tuple[int, ...]
    prefix_len: int


@dataclass(frozen=True)
class PrefixPlan:
    """How to run one micro-batch: prefix groups, and the prompts that go through the plain pass."""

    groups: tuple[PrefixGroup, ...]
    alone: tuple[int, ...]

    def shared_tokens(self) -> int:
        """Prompt tokens run once for several prompts instead of once each."""
        return sum((len(group.members) - 1) * group.prefix_len for group in self.groups)


def common_prefix_len(first: Sequence[int], second: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    # Bisection over slice comparisons: each comparison runs in C, which beats a Python loop over
    # thousands of tokens.
    first, second = list(first), list(second)
    low, high = 0, min(len(first), len(second))
    if first[:high] == second[:high]:
        return high
    while high - low > 1:  # first[:low] matches, first[:high] does not
        middle = (low + high) // 2
        if first[low:middle] == second[low:middle]:
            low = middle
        else:
            high = middle
    return low


def plan_prefix_groups(
    prompts: Sequence[Sequence[int]], config: PrefixSharingConfig, stored: Sequence[int] | None = None
) -> PrefixPlan:
    """Groups whose shared (or stored) prefix is worth running once; the rest alone.

    `stored[i]` is how many leading tokens of prompt i the prefix store holds (none if omitted).
    A prefix counts when it is at least `config.min_tokens` long and `config.min_share` of every
    prompt of its group, and it always stops one token short of its shortest prompt, so every
    member keeps a suffix whose last position gives its next-token logits.
    """
    if not config.enabled or not prompts:
        return PrefixPlan(groups=(), alone=tuple(range(len(prompts))))
    order = sorted(range(len(prompts)), key=lambda index: prompts[index])
    runs = _cheapest_runs(
        lengths=[len(prompts[index]) for index in order],
        held=[stored[index] if stored else 0 for index in order],
        adjacent=[common_prefix_len(prompts[a], prompts[b]) for a, b in zip(order, order[1:])],
        config=config,
    )
    groups: list[PrefixGroup] = []
    alone: list[int] = []
    for first, end, prefix in runs:
        members = tuple(order[first:end])
        if prefix:
            groups.append(PrefixGroup(members=members, prefix_len=prefix))
        else:
            alone.extend(members)
    return PrefixPlan(groups=tuple(groups), alone=tuple(sorted(alone)))


def _cheapest_runs(
    lengths: list[int], held: list[int], adjacent: list[int], config: PrefixSharingConfig
) -> list[tuple[int, int, int]]:
    """(first, end, prefix length or 0 for the plain pass) of the runs of sorted prompts, fewest tokens overall.

    Dynamic programming over where the last run starts: `cost[end]` is the least work for the first
    `end` prompts, `last_run[end]` the (first, prefix) of the run that ends there.
    """
    cost = [0.0] + [math.inf] * len(lengths)
    last_run = [(0, 0)] * (len(lengths) + 1)
    for end in range(1, len(lengths) + 1):
        last = end - 1
        alone = _usable(min(held[last], lengths[last] - 1), lengths[last], config)
        cost[end], last_run[end] = cost[last] + lengths[last] - alone, (last, alone)
        common = shortest = longest = total = lengths[last]
        for first in range(last - 1, -1, -1):
            common = min(common, adjacent[first])
            if common < config.min_tokens:
                break  # the common prefix only shrinks further to the left
            shortest, longest = min(shortest, lengths[first]), max(longest, lengths[first])
            total += lengths[first]
            prefix = _usable(min(common, shortest - 1), longest, config)
            if not prefix:
                continue
            reused = min(held[first], prefix)  # the same for every member: they all start with the prefix
            reused = reused if reused >= config.min_tokens else 0
            work = cost[first] + (prefix - reused) + total - (end - first) * prefix
            if work <= cost[end]:  # on a tie the longer run: fewer prefixes to look up and stack
                cost[end], last_run[end] = work, (first, prefix)
    runs = []
    end = len(lengths)
    while end > 0:
        first, prefix = last_run[end]
        runs.append((first, end, prefix))
        end = first
    return runs[::-1]


def _usable(prefix: int, longest: int, config: PrefixSharingConfig) -> int:
    """`prefix` if it is long enough, for itself and for the longest prompt it would serve; else 0."""
    return prefix if prefix >= config.min_tokens and prefix >= config.min_share * longest else 0
