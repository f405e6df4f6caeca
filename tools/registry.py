"""Tool providers by name: `create_provider("stabletoolbench", **options)`."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from codetool.errors import ConfigError
from tools.toolset import ToolProvider

_PROVIDERS: dict[str, type[ToolProvider]] = {}
_BUILTIN_MODULES = ("tools.stabletoolbench", "tools.tmdb")
P = TypeVar("P", bound=type[ToolProvider])
M = TypeVar("M", bound=BaseModel)


def register_provider(name: str) -> Callable[[P], P]:
    """Class decorator that makes a provider available to `create_provider(name)`."""

    def decorate(cls: P) -> P:
        cls.name = name
        _PROVIDERS[name] = cls
        return cls

    return decorate


def available_providers() -> list[str]:
    """Names of the registered providers."""
    _load_builtin_providers()
    return sorted(_PROVIDERS)


def create_provider(name: str, **options: Any) -> ToolProvider:
    """Build the provider registered as `name` (start it with `async with`)."""
    _load_builtin_providers()
    try:
        cls = _PROVIDERS[name]
    except KeyError:
        raise ConfigError(f"unknown tool provider {name!r}; choose one of {', '.join(sorted(_PROVIDERS))}") from None
    return cls(**options)


def parse_options(model: type[M], provider: str, options: Mapping[str, Any]) -> M:
    """Validate a provider's keyword options into its frozen options model (one-line ConfigError)."""
    try:
        return model(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "options"
        raise ConfigError(f"{provider} provider: {where}: {first['msg']}") from None


def _load_builtin_providers() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
