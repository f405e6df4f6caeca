"""The LLM endpoint the evaluation talks to (answer writer and judge)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.config import LLMConfig
from agent.llm import LLMClient
from codetool_kernel.errors import ConfigError


@dataclass(frozen=True)
class EvalEndpoint:
    """An OpenAI-compatible endpoint, its key and how many requests may be in flight."""

    base_url: str
    api_key: str = field(default="EMPTY", repr=False)
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 4

    def client(self, model: str) -> LLMClient:
        """A client for `model` at this endpoint (use with `async with`)."""
        return LLMClient(
            LLMConfig(
                base_url=self.base_url,
                api_key=self.api_key,
                model=model,
                timeout_s=self.timeout_s,
                max_retries=self.max_retries,
                max_concurrency=self.concurrency,
            )
        )


def resolve_endpoint(
    base_url: str | None, api_key: str | None, *, concurrency: int = 8, environ: Mapping[str, str] | None = None
) -> EvalEndpoint:
    """`--base-url`/`--api-key`, else `OPENAI_BASE_URL`/`OPENAI_API_KEY`."""
    env = os.environ if environ is None else environ
    url = base_url or env.get("OPENAI_BASE_URL")
    if not url:
        raise ConfigError("no judge endpoint: give --base-url or set OPENAI_BASE_URL")
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    return EvalEndpoint(base_url=url, api_key=api_key or env.get("OPENAI_API_KEY") or "EMPTY", concurrency=concurrency)
