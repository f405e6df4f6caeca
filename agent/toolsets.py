"""Which tool sources a command or a run asked for, and building their provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.config import ToolSourcesConfig
from codetool_kernel.errors import ConfigError
from codetool_kernel.paths import check_input
from tools import ToolProvider, create_provider
from tools.composite import CompositeProvider


@dataclass(frozen=True)
class ToolsetChoice:
    """A benchmark tool set (or None) with its options, and the other tool sources to offer with it."""

    name: str | None
    spec: Path | None = None
    cache: Path | None = None
    virtual_url: str | None = None
    tools_dir: Path | None = None
    sources: ToolSourcesConfig = ToolSourcesConfig()


def default_toolset(asked: str | None, sources: ToolSourcesConfig, default: str) -> str | None:
    """The benchmark tool set to use: the one asked for, else `default` unless other sources were given."""
    if asked is not None:
        return asked
    return None if sources.any else default


def check_toolset_paths(choice: ToolsetChoice) -> ToolsetChoice:
    """`choice` if the files it names exist (`ConfigError` before any work otherwise)."""
    for option, path in (("--spec", choice.spec), ("--cache", choice.cache), ("--tools-dir", choice.tools_dir)):
        if path is not None:
            check_input(path, option)
    for source in choice.sources.openapi:
        spec = str(source.get("spec", "")) if isinstance(source, Mapping) else source
        if spec and not spec.startswith(("http://", "https://")):
            check_input(Path(spec), "--openapi", kind="file")
    if choice.name is None and not choice.sources.any:
        raise ConfigError("no tool source: give --toolset, --openapi, --mcp or --tools")
    return choice


def open_provider(choice: ToolsetChoice) -> ToolProvider:
    """The provider for `choice`, not started yet (use it with `async with`)."""
    primary = [] if choice.name is None else [_benchmark_provider(choice, choice.name)]
    return combine([*primary, *source_providers(choice.sources)])


def source_providers(sources: ToolSourcesConfig) -> list[ToolProvider]:
    """A provider (not started) per OpenAPI spec and per functions module, and one for all MCP servers."""
    providers = [
        create_provider("openapi", **(dict(source) if isinstance(source, Mapping) else {"spec": source}))
        for source in sources.openapi
    ]
    if sources.mcp:
        providers.append(create_provider("mcp", servers=list(sources.mcp)))
    providers += [create_provider("functions", module=module) for module in sources.functions]
    return providers


def combine(providers: list[ToolProvider]) -> ToolProvider:
    """The one provider of `providers`, or their union (the first is primary)."""
    return providers[0] if len(providers) == 1 else CompositeProvider(providers)


def _benchmark_provider(choice: ToolsetChoice, name: str) -> ToolProvider:
    """The provider registered as `name`, with the options the command line gave (one it does not take is
    a one-line `ConfigError` from its options model)."""
    given = {"spec_path": choice.spec, "cache_dir": choice.cache, "virtual_url": choice.virtual_url, "tools_dir": choice.tools_dir}
    return create_provider(name, **{key: str(value) for key, value in given.items() if value is not None})
