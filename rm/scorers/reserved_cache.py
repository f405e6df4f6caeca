"""A key/value cache laid out once per pass, with room for the pass's new tokens.

transformers' `DynamicCache` appends each layer's new keys/values with `torch.cat`, a fresh copy of
everything cached so far, per layer and per pass. When a pass runs on top of stored prefixes, those
prefixes must be copied into one padded batch anyway; copying them straight into buffers as wide as
the pass will make them lets each layer write its new keys/values in place instead.
"""

from __future__ import annotations

import functools
from typing import Any


def reserved_cache(config: Any, layers: list[tuple[Any, Any]], filled: int) -> Any:
    """A `DynamicCache` for `config` whose layer i holds `layers[i]` (keys, values), of which `filled` columns are set.

    Each tensor is (rows, kv heads, filled + room, head dim); a layer's next `update` writes its new
    columns in place after the first `filled` (new columns beyond the room are an error).
    """
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    if len(cache.layers) != len(layers):
        raise ValueError(f"the model has {len(cache.layers)} cache layers, {len(layers)} were given")
    layer_class = _reserved_layer_class()
    cache.layers = [layer_class(keys, values, filled) for keys, values in layers]
    return cache


@functools.cache
def _reserved_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class ReservedLayer(DynamicLayer):
        """A `DynamicLayer` whose keys/values are the first columns of preallocated buffers."""

        def __init__(self, keys: Any, values: Any, filled: int) -> None:
            super().__init__()
            self._buffers = (keys, values)
            self.keys, self.values = keys[:, :, :filled], values[:, :, :filled]
            self.device = keys.device
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            start = self.keys.shape[-2]
            end = start + key_states.shape[-2]
            keys, values = self._buffers
            if end > keys.shape[-2]:
                raise ValueError(f"{end - start} new columns after {start}, the cache was laid out for {keys.shape[-2]}")
            keys[:, :, start:end] = key_states
            values[:, :, start:end] = value_states
            self.keys, self.values = keys[:, :, :end], values[:, :, :end]
            return self.keys, self.values

    return ReservedLayer
