"""Named registries of classes: every seam a user can plug into (tool providers, sandboxes, ...).

An entry is registered in code with `@registry.register(name)`, or by an installed distribution
through an entry point of the registry's group, e.g. in the plug-in's `pyproject.toml`:

```toml
[project.entry-points."codetool.tool_providers"]
weather = "weather_tools:WeatherProvider"
```

An entry point names a class (registered under the entry point's name) or a module that
registers its classes when imported. It is loaded the first time its name is looked up, and only
then, so a broken plug-in fails the look-ups of its own name alone; a name registered in code (a
built-in's too) is never looked for among the entry points.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from codetool_kernel.errors import ConfigError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes registered by name with `@registry.register(name)`, or by entry points of `group`.

    `builtin_modules` are imported on the first look-up, so that the built-in entries
    register themselves without import cycles; one that is missing (an optional extra)
    is simply not there.
    """

    def __init__(self, kind: str, builtin_modules: Sequence[str] = (), *, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
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
        """Every registered name, with those that installed plug-ins offer (not loaded yet)."""
        self._load_builtins()
        return sorted(self._entries.keys() | {point.name for point in self._entry_points()})

    def get(self, name: str) -> T:
        """The class registered as `name`, or a one-line `ConfigError` listing the choices."""
        self._load_builtins()
        if name not in self._entries:
            self._load_plugin(name)
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

    def _entry_points(self) -> tuple[EntryPoint, ...]:
        return tuple(entry_points(group=self.group)) if self.group else ()

    def _load_plugin(self, name: str) -> None:
        """Load the entry point called `name`, if an installed distribution offers one."""
        for point in self._entry_points():
            if point.name != name:
                continue
            where = f"{self.kind} plug-in {name!r} ({point.value}, entry-point group {self.group})"
            try:
                loaded = point.load()
            except Exception as exc:  # whatever a third-party import raises, said in one line
                reason = str(exc).splitlines()[0] if str(exc) else ""
                detail = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
                raise ConfigError(f"{where} failed to load: {detail}") from None
            if inspect.isclass(loaded):
                if name not in self._entries:
                    self.register(name)(loaded)  # type: ignore[arg-type]
            elif not inspect.ismodule(loaded):
                raise ConfigError(f"{where} is neither a class nor a module")
            if name not in self._entries:
                raise ConfigError(f"{where} registered no {self.kind} called {name!r}")
            return
