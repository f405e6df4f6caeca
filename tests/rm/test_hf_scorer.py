"""The hf backend on a tiny real checkpoint, loaded through from_pretrained."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from codetool_kernel.errors import RewardModelError
from rm import ScorerConfig, ScoringInputError, create_scorer, two_way_softmax
from tests.rm.helpers import conversations, error_without_module, hf_config


async def test_scores_are_probabilities_from_the_returned_logits(tiny_lm_dir: Path) -> None:
    async with create_scorer("hf", hf_config(tiny_lm_dir)) as scorer:
        results = await scorer.score(conversations())
    assert len(results) == 5
    for result in results:
        assert 0.0 <= result.score <= 1.0
        assert result.score == pytest.approx(two_way_softmax(result.yes_logit, result.no_logit), abs=1e-12)
    assert len({round(r.score, 6) for r in results}) > 1, "different candidates should not all score the same"


async def test_logits_are_the_models_next_token_logits_for_the_answer_words(tiny_lm_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    conversation = conversations(1)[0]
    async with create_scorer("hf", hf_config(tiny_lm_dir)) as scorer:
        (result,) = await scorer.score([conversation])

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|turn|>assistant\n")
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        last = model(input_ids=ids).logits[0, -1]
    yes_id, no_id = (tokenizer.convert_tokens_to_ids(word) for word in ("yes", "no"))
    assert result.yes_logit == pytest.approx(last[yes_id].item(), abs=1e-4)
    assert result.no_logit == pytest.approx(last[no_id].item(), abs=1e-4)


async def test_a_padded_batch_scores_like_one_at_a_time(tiny_lm_dir: Path) -> None:
    items = conversations(5) + conversations(2, with_history=False)  # prompts of very different lengths
    async with create_scorer("hf", hf_config(tiny_lm_dir, max_batch=16)) as scorer:
        together = await scorer.score(items)
        alone = [(await scorer.score([item]))[0] for item in items]
        assert scorer.counters()["max_batch"] == len(items)
    for batched, single in zip(together, alone, strict=True):
        assert batched.score == pytest.approx(single.score, abs=1e-5)
        assert batched.yes_logit == pytest.approx(single.yes_logit, abs=1e-4)


async def test_concurrent_requests_share_forward_passes(tiny_lm_dir: Path) -> None:
    async with create_scorer("hf", hf_config(tiny_lm_dir, max_batch=32, window_ms=20)) as scorer:
        per_request = await asyncio.gather(*(scorer.score(conversations(2)) for _ in range(12)))
        counters = scorer.counters()
    assert all(len(r) == 2 for r in per_request)
    assert counters["requests"] == 12 and counters["items"] == 24
    assert counters["forward_passes"] < counters["requests"]
    assert counters["max_batch"] > 2


async def test_a_too_long_prompt_fails_its_request_not_its_batch_mates(tiny_lm_dir: Path) -> None:
    config = ScorerConfig(model=str(tiny_lm_dir), max_prompt_tokens=200)
    short = [{"role": "user", "content": "print(1)"}]
    long = [{"role": "user", "content": "requests.get(url) " * 200}]
    async with create_scorer("hf", config) as scorer:
        outcomes = await asyncio.gather(scorer.score([long]), scorer.score([short]), return_exceptions=True)
    assert isinstance(outcomes[0], ScoringInputError) and "limit is 200" in str(outcomes[0])
    assert isinstance(outcomes[1], list) and 0.0 <= outcomes[1][0].score <= 1.0


async def test_an_answer_word_of_several_tokens_is_refused_clearly(tiny_lm_dir: Path) -> None:
    config = ScorerConfig(model=str(tiny_lm_dir), answer_words=("yes", "absolutely not"))
    with pytest.raises(RewardModelError, match="'absolutely not' is .* tokens .* exactly one"):
        async with create_scorer("hf", config):
            pass


async def test_a_missing_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RewardModelError, match=f"cannot load the tokenizer of {tmp_path}"):
        async with create_scorer("hf", ScorerConfig(model=str(tmp_path))):
            pass


async def test_cuda_runs_in_bf16_where_there_is_a_gpu_and_is_refused_where_not(tiny_lm_dir: Path) -> None:
    import torch

    cuda = ScorerConfig(model=str(tiny_lm_dir), device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RewardModelError, match="no CUDA device"):
            async with create_scorer("hf", cuda):
                pass
        return
    async with create_scorer("hf", hf_config(tiny_lm_dir)) as scorer:
        on_cpu = await scorer.score(conversations())
    async with create_scorer("hf", cuda) as scorer:
        on_gpu = await scorer.score(conversations())
    for cpu, gpu in zip(on_cpu, on_gpu, strict=True):
        assert gpu.score == pytest.approx(cpu.score, abs=0.05)  # bf16 against float32


def test_without_the_hf_extra_the_error_says_what_to_install(tiny_lm_dir: Path) -> None:
    assert error_without_module("torch", "hf", tiny_lm_dir) == (
        "RewardModelError this backend needs torch: pip install 'codetool[hf]'"
    )
