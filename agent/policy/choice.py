"""Which backend runs the policy: the `NAME:` prefix of the model, else an endpoint, else this process."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from agent.config import DEFAULT_ENDPOINT_MODEL, DEFAULT_LOCAL_MODEL, LLMConfig
from agent.policy.base import POLICY_MODELS, PolicyModel
from codetool_kernel.errors import ConfigError

NO_MODEL_HINT = "set --base-url or OPENAI_BASE_URL for a server, or --model hf:PATH for local weights"


@dataclass(frozen=True)
class PolicyChoice:
    """A backend and the config it gets (`model` without the prefix)."""

    backend: str
    config: LLMConfig
    implicit: bool
    """No prefix and no endpoint: the in-process backend was picked because nothing else was set."""

    @property
    def model_name(self) -> str:
        """The model as runs and trajectories record it (`hf:...` for in-process models)."""
        model = self.config.model or ""
        return model if self.backend == "openai" else f"{self.backend}:{model}"


def choose_policy(config: LLMConfig, endpoints: Sequence[str] = ()) -> PolicyChoice:
    """The backend for `config`: the model's registered prefix, else `openai` with an endpoint, else `hf`."""
    prefix, colon, name = (config.model or "").partition(":")
    if colon and prefix in POLICY_MODELS.names():
        if not name.strip():
            raise ConfigError(f"model {config.model!r} names no model after {prefix + ':'!r}")
        return PolicyChoice(prefix, config.model_copy(update={"model": name}), implicit=False)
    if endpoints or config.base_url:
        return PolicyChoice("openai", config.model_copy(update={"model": config.model or DEFAULT_ENDPOINT_MODEL}), False)
    return PolicyChoice("hf", config.model_copy(update={"model": config.model or DEFAULT_LOCAL_MODEL}), implicit=True)


def policy_model_name(config: LLMConfig, endpoints: Sequence[str] = ()) -> str:
    """The policy model `config` resolves to, as runs and trajectories record it."""
    return choose_policy(config, endpoints).model_name


def create_policy_model(config: LLMConfig, *, endpoints: Sequence[str] = ()) -> PolicyModel:
    """The policy model `config` names, not started; `endpoints` spread an endpoint model over several servers."""
    choice = choose_policy(config, endpoints)
    if not endpoints:
        return POLICY_MODELS.get(choice.backend)(choice.config)
    if choice.backend != "openai":
        raise ConfigError(f"--endpoint serves an OpenAI-compatible model, not {config.model!r}; drop one of them")
    from agent.runner.balancing import BalancedLLMClient

    return BalancedLLMClient(choice.config, endpoints)


async def open_policy_model(
    stack: AsyncExitStack, config: LLMConfig, *, endpoints: Sequence[str] = ()
) -> PolicyModel:
    """`create_policy_model`, started, its closing left to `stack`.

    When nothing was configured and the in-process default cannot be had, the one error line says what to set.
    """
    implicit = choose_policy(config, endpoints).implicit
    try:
        return await stack.enter_async_context(create_policy_model(config, endpoints=endpoints))
    except ConfigError as exc:
        if not implicit:
            raise
        raise ConfigError(f"no policy endpoint is configured and the in-process model failed: {exc}; {NO_MODEL_HINT}") from None
