"""Tokenizer work shared by the in-process backends: loading, answer-word ids, prompt rendering."""

from __future__ import annotations

from typing import Any

from codetool_kernel.errors import RewardModelError
from codetool_kernel.text import one_line
from rm.errors import ScoringInputError
from rm.scorers.base import missing_extra
from rm.scores import Conversation


def load_chat_tokenizer(model: str, *, extra: str) -> Any:
    """`AutoTokenizer.from_pretrained(model)` set up for left padding; it must carry a chat template."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise missing_extra(extra, exc) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise RewardModelError(f"cannot load the tokenizer of {model}: {one_line(exc)}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise RewardModelError(f"the tokenizer of {model} has no chat template; the PRM needs one")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        # Padded positions are masked out, so any id works; eos is the usual stand-in.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def answer_token_ids(tokenizer: Any, words: tuple[str, str]) -> tuple[int, int]:
    """Token ids of the yes/no words, as the model would produce them right after the generation prompt.

    Each word must be exactly one token: scoring reads a single next-token distribution, and the
    first piece of a multi-token word would be a different question.
    """
    ids = []
    for word in words:
        pieces = tokenizer.encode(word, add_special_tokens=False)
        if len(pieces) != 1:
            raise RewardModelError(
                f"answer word {word!r} is {len(pieces)} tokens for this tokenizer, it must be exactly one;"
                " pick other --answer-words"
            )
        ids.append(pieces[0])
    if ids[0] == ids[1]:
        raise RewardModelError(f"answer words {words!r} map to the same token id {ids[0]}")
    return ids[0], ids[1]


def render_prompt(tokenizer: Any, conversation: Conversation, max_tokens: int) -> list[int]:
    """Token ids of the chat template applied to `conversation`, ending with the generation prompt."""
    try:
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja raises its own errors (e.g. a template's raise_exception)
        raise ScoringInputError(f"the chat template rejected the conversation: {one_line(exc)}") from None
    # The template already holds the special tokens it wants (e.g. BOS); adding them again would double them.
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) > max_tokens:
        raise ScoringInputError(f"prompt is {len(ids)} tokens, the limit is {max_tokens}")
    return ids
