"""The `vllm` policy backend: a vLLM async engine in this process (`--model vllm:NAME`, needs a GPU).

vLLM batches concurrent requests itself; each `sample` is one request asking for `n` completions.
Prompts are rendered with the model's own chat template; stop strings are cut by vLLM (left out of the text).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from agent.config import LLMConfig
from agent.policy.base import Message, Samples, Usage, register_policy_model
from agent.policy.hf_writer import load_chat_tokenizer, render_chat
from codetool_kernel.errors import ConfigError, EndpointError
from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.text import one_line

_NEEDS = "the vllm policy backend needs vllm and a CUDA GPU"


@register_policy_model("vllm")
class VllmPolicy(AsyncLifecycle):
    """Samples from `vllm.AsyncLLMEngine` loaded with `config.model` (seeded with `config.seed`)."""

    _engine: Any = None

    def __init__(self, config: LLMConfig) -> None:
        self.config = config

    async def start(self) -> None:
        if self._engine is not None:
            return
        try:
            import torch
            import transformers
            from vllm import AsyncEngineArgs, AsyncLLMEngine
        except ImportError as exc:
            raise ConfigError(
                f"{_NEEDS}; {exc.name or 'vllm'} is not installed: pip install 'codetool[vllm]' (on CPU use --model hf:NAME)"
            ) from None
        if not torch.cuda.is_available():
            raise ConfigError(f"{_NEEDS}; torch sees no CUDA device (on CPU use --model hf:NAME)")
        name = self.config.model or ""
        self._tokenizer = load_chat_tokenizer(transformers, name)
        args = AsyncEngineArgs(model=name, seed=self.config.seed)
        try:
            self._engine = AsyncLLMEngine.from_engine_args(args)
        except Exception as exc:  # vLLM raises many types while loading; all mean "cannot serve"
            raise ConfigError(f"vLLM could not load the policy model {name}: {one_line(exc)}") from None

    async def aclose(self) -> None:
        engine, self._engine = self._engine, None
        shutdown = getattr(engine, "shutdown", None)
        if callable(shutdown):
            shutdown()

    async def sample(self, messages: Sequence[Message], *, n: int, stop: Sequence[str] = ()) -> Samples:
        """Exactly `n` completions of `messages`, each cut before the first of `stop`."""
        if self._engine is None:
            raise EndpointError(f"the vllm policy model {self.config.model} is not started (use `async with`)")
        from vllm import SamplingParams

        started = time.perf_counter()
        params = SamplingParams(
            n=n,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            max_tokens=self.config.max_tokens,
            stop=list(stop) or None,
        )
        prompt = {"prompt_token_ids": render_chat(self._tokenizer, messages)}
        request_id = uuid.uuid4().hex
        final = None
        try:
            async for output in self._engine.generate(prompt, params, request_id=request_id):
                final = output
        except Exception as exc:
            raise EndpointError(f"the vllm policy model {self.config.model} failed: {one_line(exc)}") from None
        if final is None or len(final.outputs) != n:
            raise EndpointError(f"the vllm policy model {self.config.model} returned no complete answer")
        completions = sorted(final.outputs, key=lambda completion: completion.index)
        usage = Usage(
            prompt_tokens=len(final.prompt_token_ids or ()),
            completion_tokens=sum(len(completion.token_ids) for completion in completions),
            requests=1,
        )
        return Samples(
            texts=[completion.text for completion in completions],
            finish_reasons=[completion.finish_reason for completion in completions],
            usage=usage,
            latency_s=time.perf_counter() - started,
        )
