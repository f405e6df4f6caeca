"""SDPA attention that lets torch read grouped key/value heads in place, for the `hf` backend on CPU.

transformers' own `sdpa` attention copies every key/value head once per query head sharing it
(`repeat_kv`) whenever an attention mask is given, because CUDA's fused kernels would fall back to
the slow path with a mask and `enable_gqa`. torch's CPU kernel takes both, so on CPU the copy is
pure cost: with prefix sharing every pass carries a mask and keys/values over the whole prompt.
The mask is the one transformers builds for `sdpa`, turned once per pass into the additive form
that torch's kernel otherwise derives from it again in every layer; the arithmetic is the same.
"""

from __future__ import annotations

from typing import Any

NAME = "codetool_sdpa_gqa"


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> tuple[Any, None]:
    """transformers' `sdpa` attention, except that masked multi-token passes over grouped heads skip `repeat_kv`."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plain = (
        attention_mask is None
        or query.shape[2] == 1
        or key.shape[1] == query.shape[1]
        or any(kwargs.get(name) is not None for name in ("position_bias", "softcap"))
        or kwargs.get("output_attentions", False)
    )
    if plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    output = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=kwargs.get("dropout", 0.0),
        scale=kwargs.get("scaling"),
        enable_gqa=True,
    )
    return output.transpose(1, 2).contiguous(), None


def _additive_mask(*args: Any, dtype: Any = None, **kwargs: Any) -> Any:
    """transformers' `sdpa` mask (None where `is_causal` does), as 0 where attended and the dtype's minimum where not."""
    import torch
    from transformers.masking_utils import sdpa_mask

    allowed = sdpa_mask(*args, **kwargs)
    if allowed is None:
        return None
    dtype = dtype or torch.float32
    return torch.where(allowed, torch.zeros((), dtype=dtype, device=allowed.device), torch.finfo(dtype).min)


def use_gqa_attention(model: Any) -> bool:
    """Switch `model` (on CPU, using transformers' `sdpa`) to the in-place GQA attention; False if it does not qualify."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    except ImportError:  # a transformers without pluggable attention
        return False
    if model.device.type != "cpu" or getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(NAME, _attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, _additive_mask)
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, ImportError):
        return False
    return True
