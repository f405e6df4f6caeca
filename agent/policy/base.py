"""The policy-model seam: what the step loop needs from the model that writes the steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from codetool_kernel.registry import Registry

Message = dict[str, str]


@dataclass
class Usage:
    """Token usage and request count, summed over calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.requests += other.requests

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "requests": self.requests,
        }


@dataclass
class Samples:
    """The completions of one sampling round."""

    texts: list[str]
    finish_reasons: list[str | None]
    """Per completion: `stop` (a stop string or the end of the turn), `length` (max_tokens reached)."""
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0


class PolicyModel(Protocol):
    """The model that writes the steps: `async with` it, then `sample`.

    A backend is a class registered with `@register_policy_model(name)` whose constructor takes the
    `LLMConfig` (its `model` without the `name:` prefix); `--model name:MODEL` picks it.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def aclose(self) -> None: ...

    async def sample(self, messages: Sequence[Message], *, n: int, stop: Sequence[str] = ()) -> Samples:
        """Exactly `n` completions of `messages`, each cut before the first of `stop`."""
        ...


POLICY_MODELS: Registry[type[PolicyModel]] = Registry(
    "policy model backend",
    builtin_modules=("agent.llm", "agent.policy.hf", "agent.policy.vllm"),
    group="codetool.policy_models",
)
register_policy_model = POLICY_MODELS.register


def policy_backends() -> list[str]:
    """Names of the registered policy-model backends (the `NAME:` prefixes `--model` accepts)."""
    return POLICY_MODELS.names()
