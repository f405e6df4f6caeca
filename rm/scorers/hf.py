"""The `hf` backend: a transformers causal LM in this process, with micro-batching."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from codetool_kernel.errors import RewardModelError
from rm.scorers.base import Scorer, register_scorer
from rm.scorers.batching import MicroBatcher
from rm.scorers.hf_model import CausalLmJudge
from rm.scores import Conversation, ScoreResult


@register_scorer("hf")
class HuggingFaceScorer(Scorer):
    """Loads `config.model` with transformers; concurrent requests share forward passes.

    Two dedicated threads keep the event loop free: one renders and tokenizes prompts, one runs
    torch (loading included, and never two passes at once). A request whose prompts do not render
    is refused before it is queued; tokenizing the next requests overlaps the current pass.
    Prompts of one pass that share a long prefix have it computed once, and computed prefixes are
    kept for later requests (`config.prefix_sharing`).
    """

    _executor: ThreadPoolExecutor | None = None
    _tokenizing: ThreadPoolExecutor | None = None
    _judge: CausalLmJudge | None = None
    _batcher: MicroBatcher[list[int], ScoreResult] | None = None

    async def start(self) -> None:
        if self._batcher is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rm-hf")
        try:
            judge = await asyncio.get_running_loop().run_in_executor(self._executor, CausalLmJudge, self.config)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        self._judge = judge
        self._tokenizing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rm-tokenize")
        self._batcher = MicroBatcher(judge.score_prompts, self.config.batching, self._executor)
        self._batcher.start()

    async def aclose(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
            self._batcher = None
        executors = [e for e in (self._tokenizing, self._executor) if e is not None]
        self._tokenizing = self._executor = self._judge = None
        for executor in executors:
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def _score(self, batch: list[Conversation]) -> list[ScoreResult]:
        if self._batcher is None or self._judge is None or self._tokenizing is None:
            raise RewardModelError("the hf scorer is not started")
        prompts = await asyncio.get_running_loop().run_in_executor(self._tokenizing, self._judge.render, batch)
        return await self._batcher.submit(prompts)

    def counters(self) -> dict[str, int]:
        batching = self._batcher.counters() if self._batcher is not None else {}
        sharing = self._judge.counters() if self._judge is not None else {}
        return {**super().counters(), **batching, **sharing}
