"""Grouping a micro-batch's prompts by the token prefix they share."""

from __future__ import annotations

from rm.config import PrefixSharingConfig
from rm.scorers.prefix_groups import common_prefix_len, plan_prefix_groups

SHARING = PrefixSharingConfig(min_tokens=8, min_share=0.5)


def _step(system: list[int], *candidates: list[int]) -> list[list[int]]:
    return [system + candidate for candidate in candidates]


def test_common_prefix_len_counts_equal_leading_tokens() -> None:
    assert common_prefix_len([1, 2, 3, 4], [1, 2, 9]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2
    assert common_prefix_len([5], [6]) == 0


def test_the_candidates_of_each_step_form_one_group_per_step() -> None:
    first = list(range(100, 120))
    second = list(range(200, 230))
    prompts = [
        *_step(first, [1, 2], [3]),
        *_step(second, [4], [5, 6, 7]),
        first + [8],
    ]
    plan = plan_prefix_groups(prompts, SHARING)
    assert plan.alone == ()
    assert sorted((sorted(g.members), g.prefix_len) for g in plan.groups) == [([0, 1, 4], 20), ([2, 3], 30)]
    assert plan.shared_tokens() == 2 * 20 + 1 * 30


def test_a_prefix_that_is_short_or_a_small_part_of_the_prompt_is_not_shared() -> None:
    short_prefix = _step(list(range(5)), [10] * 10, [11] * 10)  # 5 tokens < min_tokens
    small_part = _step(list(range(100, 110)), [12] * 30, [13] * 30)  # 10 of 40 tokens < half
    plan = plan_prefix_groups(short_prefix + small_part, SHARING)
    assert plan.groups == () and plan.alone == (0, 1, 2, 3)


def test_identical_prompts_keep_one_token_each_to_read_the_logits_from() -> None:
    prompt = list(range(50))
    plan = plan_prefix_groups([prompt, list(prompt), list(prompt)], SHARING)
    assert [(sorted(g.members), g.prefix_len) for g in plan.groups] == [([0, 1, 2], 49)]


def test_a_prompt_that_is_the_prefix_of_another_groups_with_it() -> None:
    base = list(range(40))
    plan = plan_prefix_groups([base + [1, 2, 3], base], SHARING)
    assert [(sorted(g.members), g.prefix_len) for g in plan.groups] == [([0, 1], 39)]


def test_a_stray_prompt_among_groups_stays_alone() -> None:
    system = list(range(300, 330))
    prompts = [*_step(system, [1], [2]), [7] * 40, *_step(system, [3])]
    plan = plan_prefix_groups(prompts, SHARING)
    assert plan.alone == (2,)
    assert [sorted(g.members) for g in plan.groups] == [[0, 1, 3]]


def test_switched_off_or_a_single_prompt_runs_everything_alone() -> None:
    prompts = _step(list(range(50)), [1], [2])
    assert plan_prefix_groups(prompts, PrefixSharingConfig(enabled=False)).alone == (0, 1)
    assert plan_prefix_groups(prompts[:1], SHARING).alone == (0,)


def test_a_lone_prompt_starts_from_what_the_store_holds_of_it() -> None:
    plan = plan_prefix_groups([list(range(60))], SHARING, stored=[40])
    assert [(g.members, g.prefix_len) for g in plan.groups] == [((0,), 40)] and plan.alone == ()
    assert plan_prefix_groups([list(range(60))], SHARING, stored=[5]).alone == (0,)  # below min_tokens


def test_stored_step_prefixes_beat_one_wide_group_over_the_shared_instructions() -> None:
    instructions = list(range(100, 130))
    steps = {client: instructions + [client] * 10 for client in (1, 2)}
    prompts = [steps[client] + [50 + candidate] * 5 for client in (1, 2) for candidate in (1, 2)]
    wide = plan_prefix_groups(prompts, SHARING)
    assert [(sorted(g.members), g.prefix_len) for g in wide.groups] == [([0, 1, 2, 3], 30)]
    narrow = plan_prefix_groups(prompts, SHARING, stored=[40, 40, 40, 40])
    assert sorted((sorted(g.members), g.prefix_len) for g in narrow.groups) == [([0, 1], 40), ([2, 3], 40)]
