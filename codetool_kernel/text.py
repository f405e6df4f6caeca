"""Text helpers shared by prompts, feedback and logs."""

from __future__ import annotations

TRUNCATION_MARK = "...[truncated]"


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, marking the cut when there is one."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(TRUNCATION_MARK):
        return text[:limit]
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK
