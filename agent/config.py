"""Configuration of an agent run, loaded once at the entry point and passed down frozen.

Precedence, highest first: command-line flags, the YAML file given with `--config`,
environment variables (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `CODETOOL_MODEL`), defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from agent.prompts import check_template
from codetool_kernel.errors import ConfigError
from codetool_kernel.protocol import SandboxLimits
from codetool_kernel.validation import FrozenModel, describe_validation_error
from tools.gateway import GatewayConfig

DEFAULT_ENDPOINT_MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"
"""The policy asked of an endpoint when no model is named (the paper's)."""
DEFAULT_LOCAL_MODEL = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
"""The policy run in this process (`hf:`) when neither an endpoint nor a model is named."""


class LLMConfig(FrozenModel):
    """The policy model's endpoint and sampling parameters (paper defaults)."""

    base_url: str | None = None
    """OpenAI-compatible endpoint; None: not configured (the policy then runs in this process)."""
    api_key: str = Field("EMPTY", repr=False)
    model: str | None = None
    """`NAME` (the endpoint's model, or in-process when no endpoint is set), `hf:NAME_OR_PATH`,
    `vllm:NAME` or `openai:NAME`; None: `DEFAULT_ENDPOINT_MODEL` with an endpoint, else `DEFAULT_LOCAL_MODEL`."""
    temperature: float = Field(0.9, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(2048, gt=0)
    timeout_s: float = Field(600.0, gt=0)
    max_retries: int = Field(4, ge=0)
    """Further attempts after a failed request (HTTP 429/5xx, timeout, refused connection, malformed answer)."""
    retry_backoff_s: float = Field(0.5, ge=0)
    """Wait before the first retry; doubled before each next one (at most 8 s)."""
    max_concurrency: int = Field(16, gt=0)
    """Requests in flight to the endpoint at once, for this agent."""
    max_top_up_rounds: int = Field(4, ge=0)
    """Extra calls allowed when a server returns fewer than `n` choices."""
    extra_body: Mapping[str, Any] = Field(default_factory=dict)
    """Passed through to the endpoint (e.g. vLLM's `top_k` or `repetition_penalty`)."""
    seed: int = 0
    """Seed of in-process sampling (`hf:`, `vllm:` models)."""


LEGACY_BEAM_MODE = "beam"
"""`search.mode: beam` from before strategies and rules were apart: the beam strategy with the codetool rule."""


class SearchConfig(FrozenModel):
    """How steps are sampled, judged and chosen."""

    n: int = Field(2, gt=0)
    max_depth: int = Field(5, gt=0)
    strategy: str = "greedy"
    """Search strategy (`agent.search.register_search_strategy`): `greedy`, `beam` (keeps `beam_width` paths),
    `tree` (expands every node)."""
    mode: str = "codetool"
    """Selection rule (`agent.selection.register_selector`): `codetool` (r_spot + r_lat), `no-latent`, `no-spot`.
    `beam` is still read, as strategy `beam` with rule `codetool` (deprecated)."""
    beam_width: int = Field(2, gt=0)
    seed: int = 0
    feedback_chars: int = Field(500, gt=0)
    """Characters of a chosen step's output fed back to the policy."""
    failure_markers: tuple[str, ...] = ("Function executing from",)
    """Output substrings (case-insensitive) that mean a tool call failed: r_spot = 0."""

    @model_validator(mode="after")
    def _one_strategy(self) -> SearchConfig:
        if self.mode == LEGACY_BEAM_MODE and self.strategy not in ("greedy", LEGACY_BEAM_MODE):
            raise ValueError(f"mode beam means strategy beam, not {self.strategy}; give the rule as mode (e.g. codetool)")
        return self

    @property
    def search_strategy(self) -> str:
        """The strategy in effect (`beam` for the deprecated mode `beam`)."""
        return LEGACY_BEAM_MODE if self.mode == LEGACY_BEAM_MODE else self.strategy

    @property
    def selection_rule(self) -> str:
        """The selection rule in effect (`codetool` for the deprecated mode `beam`)."""
        return "codetool" if self.mode == LEGACY_BEAM_MODE else self.mode

    @property
    def label(self) -> str:
        """How trajectories and run records name this search: the rule for greedy search, `beam` for beam
        search with the codetool rule (as before the two were apart), otherwise `strategy:rule`."""
        strategy, rule = self.search_strategy, self.selection_rule
        if strategy == "greedy":
            return rule
        if strategy == LEGACY_BEAM_MODE and rule == "codetool":
            return LEGACY_BEAM_MODE
        return f"{strategy}:{rule}"


class SandboxConfig(FrozenModel):
    """Which sandbox backend runs the candidates, and its bounds."""

    backend: str = "restricted"
    limits: SandboxLimits = SandboxLimits()
    options: Mapping[str, Any] = Field(default_factory=dict)
    """Backend-specific options (e.g. pool size)."""


PrmProtocol = Literal["auto", "score", "generate"]


class RewardModelConfig(FrozenModel):
    """Where the process reward model is served (or which one runs in this process), and what to do when it is not."""

    url: str | None = None
    model: str | None = None
    """A PRM run in this process (local path or hub name) instead of a server at `url`."""
    backend: str = "hf"
    """The `rm.scorers` backend that runs `model` (`hf`, `vllm`)."""
    scorer_options: Mapping[str, Any] = Field(default_factory=dict)
    """Further `rm.ScorerConfig` settings for `model` (e.g. `device: cuda`)."""
    protocol: PrmProtocol = "auto"
    """`score` (ours: `POST /score`, a step's candidates in one request), `generate` (the reference
    release's: `POST /generate`, one candidate per request), or `auto`: `/score`, and `/generate` for
    good once the server answers that it has no `/score`."""
    timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(2, ge=0)
    max_connections: int = Field(8, gt=0)
    """PRM requests in flight at once, for this agent."""
    output_chars: int = Field(2000, gt=0)
    """Characters of earlier steps' output shown to the PRM."""
    fallback_to_no_latent: bool = False


class ToolSourcesConfig(FrozenModel):
    """Tool sources offered to every query besides (or instead of) a benchmark tool set."""

    openapi: tuple[str | Mapping[str, Any], ...] = ()
    """OpenAPI 3 specs: a file path or http(s) URL (JSON or YAML), or the `openapi` provider's options
    (`{spec: ..., top_k: 10, server_url: ...}`; secrets better come from `CODETOOL_SECRET_<SCHEME>`)."""
    mcp: tuple[str | Mapping[str, Any], ...] = ()
    """MCP servers: a stdio command line (`python my_server.py`), a streamable-HTTP URL, or a server
    spec (`{command: ..., args: [...], env: {...}}`, `{url: ..., headers: {...}}`)."""
    functions: tuple[str, ...] = ()
    """Python tool functions: `package.module` or `package.module:attribute` (see `tools.function_tool`)."""

    @property
    def any(self) -> bool:
        return bool(self.openapi or self.mcp or self.functions)


class PromptsConfig(FrozenModel):
    """Prompt templates that replace the built-in ones (`agent/templates/`): each a file path or the text itself.

    The placeholders a template must use, and the only ones it may: instruction `{api_docs}`,
    `{usage_notes}`, `{feedback_chars}`; task `{query}`; feedback `{step}`, `{next_step}`, `{output}`.
    Literal braces are written twice (`{{`, `}}`). A file is read when the config is loaded.
    """

    instruction: str | None = None
    task: str | None = None
    feedback: str | None = None

    @field_validator("instruction", "task", "feedback")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        text = _file_text(value)
        try:
            return check_template(str(info.field_name), text)
        except ConfigError as exc:
            if text is not value:
                origin = f" (file {value})"
            else:
                origin = "" if "{" in value or "\n" in value else f" (no file {value} either)"
            raise ValueError(f"{exc}{origin}") from None


def _file_text(value: str) -> str:
    """The text of the file `value` names, or `value` itself when it names none (it is a template's text)."""
    if "\n" in value or "{" in value:
        return value
    path = Path(value).expanduser()
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else value
    except (OSError, UnicodeDecodeError):
        return value


class AgentConfig(FrozenModel):
    """Everything a `CodeToolAgent` needs."""

    llm: LLMConfig = LLMConfig()
    search: SearchConfig = SearchConfig()
    sandbox: SandboxConfig = SandboxConfig()
    gateway: GatewayConfig = GatewayConfig()
    rm: RewardModelConfig = RewardModelConfig()
    tools: ToolSourcesConfig = ToolSourcesConfig()
    prompts: PromptsConfig = PromptsConfig()
    audit_db: str | None = None
    """SQLite file that records every execution (see `python -m agent audit`); None records nothing."""
    audit_jsonl: str | None = None
    """Also write each execution as a JSON line here."""


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    llm: dict[str, Any] = {}
    if environ.get("OPENAI_BASE_URL"):
        llm["base_url"] = environ["OPENAI_BASE_URL"]
    if environ.get("OPENAI_API_KEY"):
        llm["api_key"] = environ["OPENAI_API_KEY"]
    if environ.get("CODETOOL_MODEL"):
        llm["model"] = environ["CODETOOL_MODEL"]
    return {"llm": llm} if llm else {}


def _file_layer(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentConfig:
    """Build the config from defaults, environment, an optional YAML file and explicit overrides."""
    layers: dict[str, Any] = _env_layer(os.environ if environ is None else environ)
    if path is not None:
        layers = _merge(layers, _file_layer(path))
    return _validated(_merge(layers, overrides or {}))


def update_config(config: AgentConfig, overrides: Mapping[str, Any]) -> AgentConfig:
    """`config` with `overrides` (nested like the YAML file) merged in, validated again."""
    return _validated(_merge(config.model_dump(), overrides))


def _validated(data: Mapping[str, Any]) -> AgentConfig:
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid setting {describe_validation_error(exc)}") from None


def config_summary(config: AgentConfig) -> dict[str, Any]:
    """The config as JSON-ready data, with the API key left out."""
    data = config.model_dump(mode="json")
    data["llm"].pop("api_key", None)
    return data

