"""The CPU attention that reads grouped key/value heads in place: same logits as transformers' `sdpa`."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from rm.scorers.gqa_attention import NAME, use_gqa_attention
from rm.scorers.prefix_pass import padded_batch


def test_masked_batches_match_sdpa_and_the_model_switches(tiny_lm_dir: Path) -> None:
    plain = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, attn_implementation="sdpa").eval()
    grouped = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, attn_implementation="sdpa").eval()
    assert plain.config.num_key_value_heads < plain.config.num_attention_heads  # the case this is for

    assert use_gqa_attention(grouped)
    assert grouped.config._attn_implementation == NAME
    # Rows of different lengths: left padding, hence a mask on every layer.
    batch = padded_batch(torch, [list(range(5, 45)), list(range(7, 19)), list(range(3, 30))], pad_id=0)
    with torch.inference_mode():
        logits = [
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids()).logits
            for model in (plain, grouped)
        ]
    real = batch.attention_mask.bool()
    torch.testing.assert_close(logits[1][real], logits[0][real], rtol=1e-4, atol=1e-5)


def test_a_model_not_on_sdpa_is_left_alone(tiny_lm_dir: Path) -> None:
    eager = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, attn_implementation="eager")
    assert not use_gqa_attention(eager)
    assert eager.config._attn_implementation == "eager"
