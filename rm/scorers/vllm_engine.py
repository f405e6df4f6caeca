"""The `vllm` backend: the PRM in an in-process vLLM async engine (needs `codetool[vllm]` and a GPU).

Per candidate the engine generates one greedy token with its `top_logprobs` alternatives; the two
answer-word ids are looked up among them (a word outside the top alternatives gets
`MISSING_LOGPROB`). vLLM batches concurrent requests itself, so there is no micro-batcher here.
"""

from __future__ import annotations

import uuid
from typing import Any

from codetool_kernel.aio import gather_all
from codetool_kernel.errors import RewardModelError
from codetool_kernel.text import one_line
from rm.scorers.base import Scorer, missing_extra, register_scorer
from rm.scorers.chat import answer_token_ids, load_chat_tokenizer, render_prompt
from rm.scores import Conversation, ScoreResult, score_from_top_logprobs


@register_scorer("vllm")
class VllmEngineScorer(Scorer):
    """Scores with `vllm.AsyncLLMEngine`; prompts are rendered with the model's own chat template."""

    _engine: Any = None

    async def start(self) -> None:
        if self._engine is not None:
            return
        try:
            from vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams
        except ImportError as exc:
            raise missing_extra("vllm", exc) from None
        self._tokenizer = load_chat_tokenizer(self.config.model, extra="vllm")
        self._answer_ids = answer_token_ids(self._tokenizer, self.config.answer_words)
        self._sampling = SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.config.top_logprobs)
        args = AsyncEngineArgs(model=self.config.model, dtype="auto", max_logprobs=self.config.top_logprobs)
        try:
            # Engine start-up (model load) happens once, before the server takes requests.
            self._engine = AsyncLLMEngine.from_engine_args(args)
        except Exception as exc:  # vLLM raises many types while loading; all mean "cannot serve"
            raise RewardModelError(f"vLLM could not load {self.config.model}: {one_line(exc)}") from None

    async def aclose(self) -> None:
        engine, self._engine = self._engine, None
        shutdown = getattr(engine, "shutdown", None)
        if callable(shutdown):
            shutdown()

    async def _score(self, batch: list[Conversation]) -> list[ScoreResult]:
        return await gather_all(self._score_one(conversation) for conversation in batch)

    async def _score_one(self, conversation: Conversation) -> ScoreResult:
        if self._engine is None:
            raise RewardModelError("the vllm scorer is not started")
        prompt = {"prompt_token_ids": render_prompt(self._tokenizer, conversation, self.config.max_prompt_tokens)}
        final = None
        try:
            async for output in self._engine.generate(prompt, self._sampling, request_id=uuid.uuid4().hex):
                final = output
        except Exception as exc:
            raise RewardModelError(f"vLLM failed to score: {one_line(exc)}") from None
        if final is None or not final.outputs or not final.outputs[0].logprobs:
            raise RewardModelError("vLLM returned no logprobs for the first token")
        alternatives = {token_id: entry.logprob for token_id, entry in final.outputs[0].logprobs[0].items()}
        return score_from_top_logprobs(alternatives, *self._answer_ids)
