"""Tool providers by name: `create_provider("stabletoolbench", **options)`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from codetool_kernel.errors import ConfigError
from codetool_kernel.registry import Registry
from codetool_kernel.validation import describe_validation_error
from tools.toolset import ToolProvider

PROVIDERS: Registry[type[ToolProvider]] = Registry(
    "tool provider",
    ("tools.stabletoolbench", "tools.tmdb", "tools.openapi", "tools.function_tools", "tools.mcp_tools"),
    group="codetool.tool_providers",
)
register_provider = PROVIDERS.register
M = TypeVar("M", bound=BaseModel)


def available_providers() -> list[str]:
    """Names of the registered providers."""
    return PROVIDERS.names()


def create_provider(name: str, **options: Any) -> ToolProvider:
    """Build the provider registered as `name` (start it with `async with`)."""
    return PROVIDERS.get(name)(**options)


def parse_options(model: type[M], provider: str, options: Mapping[str, Any]) -> M:
    """Validate a provider's keyword options into its frozen options model (one-line ConfigError)."""
    try:
        return model(**options)
    except ValidationError as exc:
        raise ConfigError(f"{provider} provider: {describe_validation_error(exc, root='options')}") from None
