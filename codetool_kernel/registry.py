"""Named registries of classes: sandbox backends, tool providers, selection modes, PRM scorers."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from codetool_kernel.errors import ConfigError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes registered by name with `@registry.register(name)`.

    `builtin_modules` are imported on the first look-up, so that the built-in entries
    register themselves without import cycles; one that is missing (an optional extra)
    is simply not there.
    """

    def __init__(self, kind: str, builtin_modules: Sequence[str] = ()) -> None:
        self.kind = kind
        self._builtin_modules = tuple(builtin_modules)
        self._loaded = False
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: make the class available as `name` (and set its `name` attribute)."""

        def decorate(cls: T) -> T:
            cls.name = name
            self._entries[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The class registered as `name`, or a one-line `ConfigError` listing the choices."""
        self._load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}") from None

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin_modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
