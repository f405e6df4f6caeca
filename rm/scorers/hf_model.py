"""The blocking half of the `hf` backend: a causal LM read at the next-token position.

Everything here runs on the scorer's single worker thread, never on the event loop.
"""

from __future__ import annotations

import inspect

from codetool.errors import RewardModelError
from rm.config import ScorerConfig
from rm.errors import one_line
from rm.scorers.base import missing_extra
from rm.scorers.chat import answer_token_ids, load_chat_tokenizer, render_prompt
from rm.scores import Conversation, ScoreResult


class CausalLmJudge:
    """A tokenizer and a causal LM: conversations become prompt ids, batches of prompts become yes/no logits."""

    def __init__(self, config: ScorerConfig) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as exc:
            raise missing_extra("hf", exc) from None
        self._torch = torch
        self._max_prompt_tokens = config.max_prompt_tokens
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
        # Only the last position is read; models that can skip the other positions' logits save memory.
        self._last_only = (
            {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self.model.forward).parameters else {}
        )

    def render(self, conversations: list[Conversation]) -> list[list[int]]:
        """Prompt token ids per conversation; raises `ScoringInputError` for the first that cannot be scored."""
        return [render_prompt(self.tokenizer, conversation, self._max_prompt_tokens) for conversation in conversations]

    def score_prompts(self, prompts: list[list[int]]) -> list[ScoreResult | Exception]:
        """One forward pass over all prompts; an item whose logits are not finite gets its error."""
        outcomes: list[ScoreResult | Exception] = []
        for yes, no in self._yes_no_logits(prompts):
            try:
                outcomes.append(ScoreResult.from_logits(yes, no))
            except RewardModelError as exc:
                outcomes.append(exc)
        return outcomes

    def _yes_no_logits(self, prompts: list[list[int]]) -> list[tuple[float, float]]:
        torch = self._torch
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding: every prompt ends at the last column
            input_ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention_mask[row, width - len(prompt) :] = 1
        # Without explicit positions a left-padded row starts at position = its padding length; rotary
        # models do not mind (only relative offsets count), but absolute-position models would score
        # the prompt differently from when it is scored alone.
        position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        with torch.inference_mode():
            output = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                position_ids=position_ids.to(self.device),
                use_cache=False,
                **self._last_only,
            )
            pairs = output.logits[:, -1, list(self.answer_ids)].float().cpu().tolist()
        return [(yes, no) for yes, no in pairs]
