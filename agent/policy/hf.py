"""The `hf` policy backend: a transformers causal LM in this process (`--model hf:NAME_OR_PATH`)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from agent.config import LLMConfig
from agent.policy.base import Message, Samples, register_policy_model
from agent.policy.hf_writer import CausalLmWriter
from codetool_kernel.errors import EndpointError
from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.text import one_line


@register_policy_model("hf")
class HuggingFacePolicy(AsyncLifecycle):
    """Loads `config.model` (a local folder or a Hugging Face hub name) with transformers and samples from it.

    All torch work (loading included) runs on one dedicated thread, one generation at a time; at most
    `max_concurrency` calls wait for it. Sampling is seeded (`seed`, then one more per call), and a
    cancelled call or closing the backend stops a generation at its next token.
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._seeds = itertools.count(config.seed)
        self._executor: ThreadPoolExecutor | None = None
        self._writer: CausalLmWriter | None = None

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-hf")
        self._writer = await asyncio.get_running_loop().run_in_executor(self._executor, CausalLmWriter, self.config)

    async def aclose(self) -> None:
        executor, writer = self._executor, self._writer
        self._executor = self._writer = None
        if writer is not None:
            writer.closing.set()
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def sample(self, messages: Sequence[Message], *, n: int, stop: Sequence[str] = ()) -> Samples:
        """Exactly `n` completions of `messages`, each cut before the first of `stop`."""
        started = time.perf_counter()
        async with self._slots:
            if self._executor is None or self._writer is None:
                raise EndpointError(f"the hf policy model {self.config.model} is not started (use `async with`)")
            cancel = threading.Event()
            call = self._writer.write, list(messages), n, tuple(stop), next(self._seeds), cancel
            try:
                samples = await asyncio.get_running_loop().run_in_executor(self._executor, *call)
            except asyncio.CancelledError:
                cancel.set()
                raise
            except Exception as exc:  # torch and transformers raise many types; all mean "no completion"
                raise EndpointError(f"the hf policy model {self.config.model} failed: {one_line(exc)}") from None
        samples.latency_s = time.perf_counter() - started
        return samples
