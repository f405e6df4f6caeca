"""Torch side of the `hf` backend's passes: left-padded batches, and scoring on top of shared prefixes.

A shared prefix is run once, its keys/values (one row per prefix, padding removed) are kept in a
`PrefixStore`, and every prompt of its group then runs only its own suffix on top of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from rm.config import PrefixSharingConfig
from rm.scorers.prefix_groups import PrefixGroup
from rm.scorers.prefix_store import PrefixStore
from rm.scorers.reserved_cache import reserved_cache

log = structlog.get_logger("rm.scorers")

RowCache = list[tuple[Any, Any]]
"""Keys and values of one token row, per layer, each shaped (1, kv heads, tokens, head dim)."""


@dataclass(frozen=True)
class PaddedBatch:
    """Token rows left-padded to one width, so every row ends at the last column."""

    input_ids: Any
    attention_mask: Any

    def position_ids(self) -> Any:
        """0, 1, 2, ... from each row's first real token (padding sits at 0, masked anyway).

        Without explicit positions a left-padded row starts at position = its padding length; rotary
        models do not mind (only relative offsets count), but absolute-position models would score
        the prompt differently from when it is scored alone.
        """
        return (self.attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def padded_batch(torch: Any, rows: Sequence[Sequence[int]], pad_id: int) -> PaddedBatch:
    """`rows` left-padded with `pad_id`, with the attention mask that hides the padding."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for number, row in enumerate(rows):
        input_ids[number, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        attention_mask[number, width - len(row) :] = 1
    return PaddedBatch(input_ids, attention_mask)


def _crop(row: RowCache, length: int) -> RowCache:
    return [(keys[:, :, :length], values[:, :, :length]) for keys, values in row]


class SharedPrefixPasses:
    """Scores groups of prompts that share a prefix: prefixes first (from the store where it has them), then suffixes.

    Exact only where every layer caches the keys and values of all positions (full attention): a
    sliding-window or recurrent layer would see the padding between prefix and suffix as distance or
    state. `for_model` checks that on the cache layout transformers builds from the model's config,
    so no model family is named here.
    """

    def __init__(self, model: Any, argument: str, pad_id: int, config: PrefixSharingConfig, extra: Mapping[str, Any]):
        import torch
        from transformers import DynamicCache

        self._torch = torch
        self._cache_class = DynamicCache
        self._model = model
        self._argument = argument
        self._pad_id = pad_id
        self._extra = dict(extra)
        self._store: PrefixStore[RowCache] = PrefixStore(config.cache_tokens, config.min_tokens, _crop)

    @classmethod
    def for_model(
        cls, model: Any, forward_parameters: Mapping[str, Any], pad_id: int, config: PrefixSharingConfig, **extra: Any
    ) -> SharedPrefixPasses | None:
        """The passes for `model`, or None (with a log line) when sharing a prefix cannot be exact for it."""
        # transformers 5 renamed the forward argument `past_key_values` to `cache`.
        argument = next((name for name in ("cache", "past_key_values") if name in forward_parameters), None)
        try:
            from transformers import DynamicCache
            from transformers.cache_utils import DynamicLayer

            layers = DynamicCache(config=model.config).layers
        except (ImportError, TypeError, ValueError):  # a transformers without per-layer cache layouts
            layers = []
        if argument is None or not layers or any(type(layer) is not DynamicLayer for layer in layers):
            log.warning("prefix sharing is off: this model's cache is not plain full attention in every layer")
            return None
        return cls(model, argument, pad_id, config, extra)

    def counters(self) -> dict[str, int]:
        return self._store.counters()

    def stored_lengths(self, prompts: Sequence[Sequence[int]]) -> list[int]:
        """How many leading tokens of each prompt the prefix store holds."""
        return [self._store.match_length(prompt) for prompt in prompts]

    def last_logits(self, prompts: Sequence[Sequence[int]], groups: Sequence[PrefixGroup]) -> Any:
        """Next-token logits (rows, vocab) of every group member, in group order."""
        torch = self._torch
        with torch.inference_mode():
            return self._last_logits(prompts, groups)

    def _last_logits(self, prompts: Sequence[Sequence[int]], groups: Sequence[PrefixGroup]) -> Any:
        torch = self._torch
        prefixes = [list(prompts[group.members[0]][: group.prefix_len]) for group in groups]
        rows = self._prefix_rows(prefixes)
        row_of_member = [number for number, group in enumerate(groups) for _ in group.members]
        suffixes = [prompts[member][group.prefix_len :] for group in groups for member in group.members]
        cached = torch.tensor([group.prefix_len for group in groups for _ in group.members], dtype=torch.long)
        return self._extend(rows, row_of_member, suffixes, cached).logits[:, -1]

    def _prefix_rows(self, prefixes: list[list[int]]) -> list[RowCache]:
        """Keys/values of each prefix: from the store, or computed on the store's longest match and kept."""
        found = [self._store.longest(prefix) for prefix in prefixes]
        missing = [number for number, prefix in enumerate(prefixes) if found[number][0] < len(prefix)]
        if missing:
            bases = [found[number][1] or [] for number in missing]
            base_lengths = [found[number][0] for number in missing]
            news = [prefixes[number][length:] for number, length in zip(missing, base_lengths)]
            lengths = self._torch.tensor(base_lengths, dtype=self._torch.long)
            output = self._extend(bases, list(range(len(bases))), news, lengths)
            for at, number in enumerate(missing):
                row = self._compact(output.cache, output.attention_mask[at], at)
                found[number] = (len(prefixes[number]), row)
                self._store.put(prefixes[number], row)
        return [row for _, row in found if row is not None]

    def _extend(self, bases: list[RowCache], base_of: list[int], news: list[list[int]], base_lengths: Any) -> _Extended:
        """One forward pass of each `news[i]` on top of `bases[base_of[i]]`.

        That base holds the keys/values of the row's first `base_lengths[i]` tokens (none: an empty row).
        """
        torch = self._torch
        device = self._model.device
        batch = padded_batch(torch, news, self._pad_id)
        cache, base_mask = self._stack(bases, base_of, room=batch.input_ids.shape[1])
        # Keys are [row's left-padded base | row's left-padded new tokens]; the padding in between is masked.
        attention_mask = torch.cat([base_mask, batch.attention_mask], dim=1)
        output = self._model(
            input_ids=batch.input_ids.to(device),
            attention_mask=attention_mask.to(device),
            position_ids=(batch.position_ids() + base_lengths[:, None]).to(device),
            use_cache=True,
            **{self._argument: cache},
            **self._extra,
        )
        return _Extended(output.logits, cache, attention_mask)

    def _stack(self, rows: list[RowCache], pick: list[int], room: int) -> tuple[Any, Any]:
        """A batch cache whose row i is `rows[pick[i]]` left-padded to one width, and its attention mask.

        Each row is copied straight to where the pass reads it, with `room` columns left after it for
        the pass's own keys/values (`reserved_cache`), so nothing is copied twice.
        """
        torch = self._torch
        lengths = [row[0][0].shape[2] if row else 0 for row in rows]
        width = max(lengths, default=0)
        mask = torch.zeros((len(pick), width), dtype=torch.long)
        for number, row in enumerate(pick):
            mask[number, width - lengths[row] :] = 1
        if width == 0:
            return self._cache_class(config=self._model.config), mask
        template = next(row for row in rows if row)
        layers = []
        for layer in range(len(template)):
            keys_values = []
            for part in (0, 1):
                shape = template[layer][part].shape
                tensor = template[layer][part].new_empty((len(pick), shape[1], width + room, shape[3]))
                for number, row in enumerate(pick):
                    padding = width - lengths[row]
                    # Padding is masked out, but an uninitialised NaN would still poison the weighted sum.
                    tensor[number, :, :padding] = 0
                    if lengths[row]:
                        tensor[number, :, padding:width] = rows[row][layer][part][0]
                keys_values.append(tensor)
            layers.append((keys_values[0], keys_values[1]))
        return reserved_cache(self._model.config, layers, width), mask

    def _compact(self, cache: Any, mask_row: Any, row: int) -> RowCache:
        """Row `row` of a batch cache without its padding columns."""
        columns = mask_row.nonzero().squeeze(1).to(self._model.device)
        return [
            (layer.keys[row : row + 1].index_select(2, columns), layer.values[row : row + 1].index_select(2, columns))
            for layer in cache.layers
        ]


@dataclass(frozen=True)
class _Extended:
    logits: Any
    cache: Any
    attention_mask: Any
