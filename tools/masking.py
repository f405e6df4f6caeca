"""Swapping masked secrets for real values on the way out and back again on the way in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SecretMasker:
    """Replaces masks with real secrets (`reveal`) and real secrets with masks (`hide`).

    Works through strings nested anywhere in dicts and lists (keys included), so a mask
    inside a header value (`"Bearer <mask>"`), a JSON body or a query parameter is found.
    Pairs whose mask or real value is empty are ignored: replacing "" would rewrite everything.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        pairs = [(mask, real) for mask, real in secrets.items() if mask and real and mask != real]
        self._mask_to_real = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)
        self._real_to_mask = sorted(((real, mask) for mask, real in pairs), key=lambda p: len(p[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._mask_to_real)

    def reveal(self, value: Any) -> Any:
        """`value` with every mask replaced by its real secret."""
        return _replace_nested(value, self._mask_to_real)

    def hide(self, value: Any) -> Any:
        """`value` with every real secret replaced by its mask."""
        return _replace_nested(value, self._real_to_mask)


def _replace_nested(value: Any, pairs: list[tuple[str, str]]) -> Any:
    if not pairs:
        return value
    if isinstance(value, str):
        for old, new in pairs:
            if old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, Mapping):
        return {_replace_nested(key, pairs): _replace_nested(item, pairs) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_nested(item, pairs) for item in value]
    return value
