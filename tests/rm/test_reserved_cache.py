"""The cache laid out with room for a pass: same logits as transformers' growing cache, new keys written in place."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from rm.scorers.reserved_cache import reserved_cache

PROMPT = list(range(5, 45))
SPLIT = 30  # the first SPLIT tokens are cached, the rest run on top of them


def test_a_pass_on_a_reserved_cache_matches_one_on_a_growing_cache(tiny_lm_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    head, tail = torch.tensor([PROMPT[:SPLIT]]), torch.tensor([PROMPT[SPLIT:]])
    with torch.inference_mode():
        base = DynamicCache(config=model.config)
        model(input_ids=head, cache=base, use_cache=True)
        buffers = []
        for layer in base.layers:
            keys, values = (part.new_zeros((1, part.shape[1], len(PROMPT), part.shape[3])) for part in (layer.keys, layer.values))
            keys[:, :, :SPLIT], values[:, :, :SPLIT] = layer.keys, layer.values
            buffers.append((keys, values))
        reserved = reserved_cache(model.config, buffers, SPLIT)
        positions = torch.arange(SPLIT, len(PROMPT))[None]
        on_reserved = model(input_ids=tail, position_ids=positions, cache=reserved, use_cache=True)
        on_growing = model(input_ids=tail, position_ids=positions, cache=base, use_cache=True)
        whole = model(input_ids=torch.tensor([PROMPT])).logits[:, SPLIT:]
    torch.testing.assert_close(on_reserved.logits, on_growing.logits)
    torch.testing.assert_close(on_reserved.logits, whole, rtol=1e-4, atol=1e-5)
    for layer, (keys, values), grown in zip(reserved.layers, buffers, base.layers, strict=True):
        assert layer.keys.data_ptr() == keys.data_ptr() and layer.values.data_ptr() == values.data_ptr()
        torch.testing.assert_close(keys, grown.keys)
        torch.testing.assert_close(values, grown.values)


def test_more_new_columns_than_the_room_is_an_error(tiny_lm_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    config = model.config
    shape = (1, config.num_key_value_heads, SPLIT + 2, config.hidden_size // config.num_attention_heads)
    cache = reserved_cache(config, [(torch.zeros(shape), torch.zeros(shape))] * config.num_hidden_layers, SPLIT)
    with torch.inference_mode(), pytest.raises(ValueError, match="laid out for 32"):
        model(input_ids=torch.tensor([[5, 6, 7]]), position_ids=torch.tensor([[30, 31, 32]]), cache=cache)


def test_the_layer_count_must_match_the_model(tiny_lm_dir: Path) -> None:
    config = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).config
    with pytest.raises(ValueError, match="cache layers"):
        reserved_cache(config, [], 0)


def test_its_layers_are_transformers_full_attention_layers(tiny_lm_dir: Path) -> None:
    # Code that asks the cache for its layout (mask sizes, sequence length) sees a plain growing cache.
    config = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).config
    shape = (2, config.num_key_value_heads, 7, config.hidden_size // config.num_attention_heads)
    cache = reserved_cache(config, [(torch.zeros(shape), torch.zeros(shape))] * config.num_hidden_layers, 4)
    assert isinstance(cache, DynamicCache) and cache.get_seq_length() == 4
