"""The hf backend's prefix sharing on a tiny real checkpoint: same scores as one prompt at a time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rm import BatchingConfig, PriorStep, ScorerConfig, ScoreResult, build_prm_messages, create_scorer
from rm.config import PrefixSharingConfig
from rm.scores import Conversation
from tests.rm.helpers import CANDIDATES

FIELDS = ("name", "release date", "score", "tags", "cast", "reviews", "budget", "language")


def agent_step(topic: str, candidates: int, *, steps_before: int = 1) -> list[Conversation]:
    """The PRM prompts of one agent step: a long system prompt of its own, one candidate each."""
    docs = "\n".join(f"GET /{topic}/{{id}}/{field}: returns the {field} of the {topic} as JSON" for field in FIELDS)
    previous = [
        PriorStep(f"##Step {k}: list\n```python\nprint(get('/{topic}/{k}'))\n```", f"{topic} {k}\n")
        for k in range(1, steps_before + 1)
    ]
    return [
        build_prm_messages(
            api_docs=docs,
            query=f"Which {topic} has the best reviews?",
            previous=previous,
            candidate=CANDIDATES[number],
        )
        for number in range(candidates)
    ]


def _config(model_dir: Path, *, sharing: bool = True, cache_tokens: int = 32768) -> ScorerConfig:
    return ScorerConfig(
        model=str(model_dir),
        batching=BatchingConfig(max_batch=32, window_ms=0),
        prefix_sharing=PrefixSharingConfig(enabled=sharing, cache_tokens=cache_tokens),
    )


async def _together_and_alone(config: ScorerConfig, items: list[Conversation]) -> tuple[list, list, dict[str, int]]:
    async with create_scorer("hf", config) as scorer:
        together = await scorer.score(items)
        counters = scorer.counters()
        alone = [(await scorer.score([item]))[0] for item in items]
    return together, alone, counters


def _assert_same_scores(first: list[ScoreResult], second: list[ScoreResult]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.yes_logit == pytest.approx(b.yes_logit, abs=1e-4)
        assert a.no_logit == pytest.approx(b.no_logit, abs=1e-4)
        assert a.score == pytest.approx(b.score, abs=1e-5)


async def test_a_shared_prefix_scores_like_each_prompt_alone(tiny_lm_dir: Path) -> None:
    items = agent_step("movie", 4)
    together, alone, counters = await _together_and_alone(_config(tiny_lm_dir), items)
    assert counters["forward_passes"] == 1 and counters["prefix_groups"] == 1
    assert counters["prefix_tokens_saved"] > 3 * 200  # the system prompt, not recomputed for 3 of the 4
    _assert_same_scores(together, alone)
    assert len({round(r.score, 6) for r in together}) == 4


async def test_groups_with_different_prefixes_and_a_stray_prompt_share_one_batch(tiny_lm_dir: Path) -> None:
    stray: Conversation = [{"role": "user", "content": "print('unrelated')"}]
    items = [*agent_step("movie", 3), stray, *agent_step("television series", 2)]
    together, alone, counters = await _together_and_alone(_config(tiny_lm_dir), items)
    assert counters["forward_passes"] == 1 and counters["prefix_groups"] == 2
    _assert_same_scores(together, alone)


async def test_a_batch_that_shares_no_long_prefix_takes_the_plain_pass(tiny_lm_dir: Path) -> None:
    items: list[Conversation] = [
        [{"role": "user", "content": f"{number}: {CANDIDATES[number]}"}] for number in range(4)
    ]
    together, alone, counters = await _together_and_alone(_config(tiny_lm_dir), items)
    assert counters["forward_passes"] == 1 and counters["prefix_groups"] == 0
    _assert_same_scores(together, alone)


async def test_switched_off_it_scores_the_same_without_groups(tiny_lm_dir: Path) -> None:
    items = agent_step("movie", 3)
    shared, _, _ = await _together_and_alone(_config(tiny_lm_dir), items)
    plain, _, counters = await _together_and_alone(_config(tiny_lm_dir, sharing=False), items)
    assert counters["prefix_groups"] == 0 and counters["prefix_tokens_saved"] == 0
    _assert_same_scores(shared, plain)


async def test_a_model_with_sliding_window_layers_never_shares_a_prefix(tiny_lm_dir: Path, tmp_path: Path) -> None:
    # Padding between prefix and suffix would shift a sliding window, so such models keep the plain pass.
    model_dir = Path(shutil.copytree(tiny_lm_dir, tmp_path / "sliding"))
    config = json.loads((model_dir / "config.json").read_text())
    layers = config["num_hidden_layers"]
    config.update(use_sliding_window=True, sliding_window=32, max_window_layers=0)
    config["layer_types"] = ["sliding_attention"] * layers
    (model_dir / "config.json").write_text(json.dumps(config))
    items = agent_step("movie", 3)
    together, alone, counters = await _together_and_alone(_config(model_dir), items)
    assert counters["forward_passes"] == 1 and counters["prefix_groups"] == 0
    _assert_same_scores(together, alone)


async def test_the_next_step_starts_from_the_stored_prefix_of_the_step_before(tiny_lm_dir: Path) -> None:
    first, second = agent_step("movie", 2), agent_step("movie", 2, steps_before=2)
    async with create_scorer("hf", _config(tiny_lm_dir)) as scorer:
        await scorer.score(first)
        assert scorer.counters()["prefix_cache_hits"] == 0
        reused = await scorer.score(second)
        counters = scorer.counters()
        alone = [(await scorer.score([item]))[0] for item in second]
    assert counters["prefix_cache_hits"] == 1 and counters["prefix_cache_tokens_reused"] > 200
    _assert_same_scores(reused, alone)


async def test_stored_and_new_prefixes_mix_in_one_batch(tiny_lm_dir: Path) -> None:
    stray: Conversation = [{"role": "user", "content": "print('unrelated')"}]
    items = [*agent_step("television series", 2), stray, *agent_step("movie", 3)]
    async with create_scorer("hf", _config(tiny_lm_dir)) as scorer:
        await scorer.score(agent_step("movie", 2))  # stores the movie step's prefix
        before = scorer.counters()
        mixed = await scorer.score(items)
        after = scorer.counters()
        alone = [(await scorer.score([item]))[0] for item in items]
    groups, hits = (after[name] - before[name] for name in ("prefix_groups", "prefix_cache_hits"))
    # The movie prompts start from the stored movie prefix; the series pair reuses the judging
    # instructions it shares with it and computes the rest once for both.
    assert groups >= 2 and hits == groups
    _assert_same_scores(mixed, alone)


async def test_without_a_store_nothing_is_reused_and_the_scores_stay(tiny_lm_dir: Path) -> None:
    first, second = agent_step("movie", 2), agent_step("movie", 2, steps_before=2)
    async with create_scorer("hf", _config(tiny_lm_dir, cache_tokens=0)) as scorer:
        await scorer.score(first)
        plain = await scorer.score(second)
        counters = scorer.counters()
    async with create_scorer("hf", _config(tiny_lm_dir)) as scorer:
        await scorer.score(first)
        reused = await scorer.score(second)
    assert counters["prefix_groups"] == 2 and counters["prefix_cache_hits"] == 0
    assert counters["prefix_cache_tokens_held"] == 0
    _assert_same_scores(plain, reused)
