"""Checking what an OpenAI-compatible endpoint answered, before anything reads it.

The `openai` client builds its response objects without validating them, so an answer
without `choices`, a choice without a `message` or negative token counts reach the caller
as they are. Every reader of chat completions (policy, judge, simulator) checks here first.
"""

from __future__ import annotations


def malformed_completion(response: object) -> str | None:
    """What is wrong with a chat completion an endpoint answered, or None when it is well formed."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list):
        return "JSON without `choices`"
    for choice in choices:
        if getattr(choice, "message", None) is None:
            return "a choice without a `message`"
        if not isinstance(getattr(choice, "index", None), int):
            return "a choice without an `index`"
    usage = getattr(response, "usage", None)
    if usage is not None:
        for name in ("prompt_tokens", "completion_tokens"):
            value = getattr(usage, name, None)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                return f"an invalid usage.{name} ({value!r})"
    return None
