"""Settings of a benchmark run (`python -m agent run`), besides the agent's own config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from agent.toolsets import ToolsetChoice
from codetool_kernel.errors import ConfigError
from codetool_kernel.validation import FrozenModel, describe_validation_error
from tools.queries import QUERY_SOURCES

Executor = Literal["local", "ray"]


class Price(FrozenModel):
    """What one model's tokens cost, in currency units per million tokens."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


class RunSettings(FrozenModel):
    """Which queries a run solves, where it writes, and how it spreads the work."""

    benchmark: str
    """The benchmark: a registered query source (`tools.register_query_source`), and the tool provider of that name."""
    data: Path
    """A StableToolBench query folder (with `test_instruction/`...), or one query file."""
    out: Path
    groups: tuple[str, ...] = ()
    filtered: bool = False
    """Read `filter_test_instruction/` instead of `test_instruction/`."""
    query_ids: tuple[str, ...] = ()
    """Only these queries (all when empty)."""
    limit: int | None = Field(None, gt=0)
    """The first `limit` queries of each group."""
    spec: Path | None = None
    cache: Path | None = None
    virtual_url: str | None = None
    tools_dir: Path | None = None
    concurrency: int = Field(4, gt=0)
    """Queries in flight at once (per worker with the ray executor)."""
    max_failures: int | None = Field(10, ge=0)
    """Failed queries tolerated before the run stops starting new ones; None: no limit."""
    endpoints: tuple[str, ...] = ()
    """Policy endpoints to balance requests across (replaces `llm.base_url` when given)."""
    prices: Mapping[str, Price] = Field(default_factory=dict)
    executor: Executor = "local"
    address: str | None = None
    """Ray cluster address (None: start or join a local instance)."""
    workers: int | None = Field(None, gt=0)
    """Ray shards (default: the cluster's CPUs)."""
    progress: bool = True

    @field_validator("benchmark")
    @classmethod
    def _registered(cls, name: str) -> str:
        try:
            QUERY_SOURCES.get(name)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return name

    @property
    def toolset(self) -> ToolsetChoice:
        return ToolsetChoice(
            self.benchmark, spec=self.spec, cache=self.cache, virtual_url=self.virtual_url, tools_dir=self.tools_dir
        )

    def cost(self, model: str, usage: Mapping[str, int]) -> float | None:
        """The price of `usage` tokens of `model`, or None when the price table does not list it."""
        price = self.prices.get(model)
        if price is None:
            return None
        return price.cost(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))


def load_prices(path: Path) -> dict[str, Price]:
    """A price table: a YAML or JSON mapping `model: {prompt: X, completion: Y}` (per million tokens)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"price table {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"price table {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"price table {path} must map model names to {{prompt, completion}}")
    prices = {}
    for model, entry in raw.items():
        try:
            prices[str(model)] = Price.model_validate(entry)
        except ValidationError as exc:
            raise ConfigError(f"price table {path}, model {model}: {describe_validation_error(exc)}") from None
    return prices
