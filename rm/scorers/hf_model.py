"""The blocking half of the `hf` backend: a causal LM read at the next-token position.

Everything here runs on the scorer's single worker thread, never on the event loop.
"""

from __future__ import annotations

import inspect
from typing import Any

from codetool_kernel.errors import RewardModelError
from codetool_kernel.text import one_line
from rm.config import ScorerConfig
from rm.scorers.base import missing_extra
from rm.scorers.chat import answer_token_ids, load_chat_tokenizer, render_prompt
from rm.scorers.gqa_attention import use_gqa_attention
from rm.scorers.prefix_groups import plan_prefix_groups
from rm.scorers.prefix_pass import SharedPrefixPasses, padded_batch
from rm.scores import Conversation, ScoreResult


class CausalLmJudge:
    """A tokenizer and a causal LM: conversations become prompt ids, batches of prompts become yes/no logits.

    Prompts of one batch that share a long token prefix (the candidates of one agent step) have that
    prefix computed once, or taken from the prefix store when an earlier batch computed it (the
    previous step of the same query); their suffixes then run together on top of its keys/values.
    The plan is `plan_prefix_groups`, the passes `SharedPrefixPasses`; a batch with nothing worth
    sharing takes one plain pass.
    """

    def __init__(self, config: ScorerConfig) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as exc:
            raise missing_extra("hf", exc) from None
        self._torch = torch
        self._max_prompt_tokens = config.max_prompt_tokens
        self._sharing = config.prefix_sharing
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise RewardModelError(f"--device {config.device} asked for, but torch sees no CUDA device")
        self.device = torch.device(config.device)
        self.tokenizer = load_chat_tokenizer(config.model, extra="hf")
        self.answer_ids = answer_token_ids(self.tokenizer, config.answer_words)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise RewardModelError(f"cannot load the model {config.model}: {one_line(exc)}") from None
        self.model = model.to(self.device).eval()
        use_gqa_attention(self.model)
        parameters = inspect.signature(self.model.forward).parameters
        # Only the last position is read; models that can skip the other positions' logits save memory.
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
        self._shared_passes = (
            SharedPrefixPasses.for_model(
                self.model, parameters, self.tokenizer.pad_token_id, self._sharing, **self._last_only
            )
            if self._sharing.enabled
            else None
        )
        self._shared_groups = 0
        self._shared_tokens = 0

    def render(self, conversations: list[Conversation]) -> list[list[int]]:
        """Prompt token ids per conversation; raises `ScoringInputError` for the first that cannot be scored."""
        return [render_prompt(self.tokenizer, conversation, self._max_prompt_tokens) for conversation in conversations]

    def score_prompts(self, prompts: list[list[int]]) -> list[ScoreResult | Exception]:
        """Yes/no logits of every prompt; an item whose logits are not finite gets its error."""
        outcomes: list[ScoreResult | Exception] = []
        for yes, no in self._yes_no_logits(prompts):
            try:
                outcomes.append(ScoreResult.from_logits(yes, no))
            except RewardModelError as exc:
                outcomes.append(exc)
        return outcomes

    def counters(self) -> dict[str, int]:
        """Groups scored on a shared prefix, the prompt tokens that sharing did not recompute, prefix-store use."""
        store = self._shared_passes.counters() if self._shared_passes is not None else {}
        return {"prefix_groups": self._shared_groups, "prefix_tokens_saved": self._shared_tokens, **store}

    def _yes_no_logits(self, prompts: list[list[int]]) -> list[tuple[float, float]]:
        if self._shared_passes is None:
            return self._plain_logits(prompts)
        plan = plan_prefix_groups(prompts, self._sharing, self._shared_passes.stored_lengths(prompts))
        if not plan.groups:
            return self._plain_logits(prompts)
        pairs: list[tuple[float, float]] = [(0.0, 0.0)] * len(prompts)
        if plan.alone:
            for index, pair in zip(plan.alone, self._plain_logits([prompts[i] for i in plan.alone]), strict=True):
                pairs[index] = pair
        shared = self._answer_pairs(self._shared_passes.last_logits(prompts, plan.groups))
        members = [member for group in plan.groups for member in group.members]
        for index, pair in zip(members, shared, strict=True):
            pairs[index] = pair
        self._shared_groups += len(plan.groups)
        self._shared_tokens += plan.shared_tokens()
        return pairs

    def _plain_logits(self, prompts: list[list[int]]) -> list[tuple[float, float]]:
        """One forward pass over whole prompts, left-padded to a common width."""
        batch = padded_batch(self._torch, prompts, self.tokenizer.pad_token_id)
        with self._torch.inference_mode():
            output = self.model(
                input_ids=batch.input_ids.to(self.device),
                attention_mask=batch.attention_mask.to(self.device),
                position_ids=batch.position_ids().to(self.device),
                use_cache=False,
                **self._last_only,
            )
            return self._answer_pairs(output.logits[:, -1])

    def _answer_pairs(self, last_logits: Any) -> list[tuple[float, float]]:
        pairs = last_logits[:, list(self.answer_ids)].float().cpu().tolist()
        return [(yes, no) for yes, no in pairs]
