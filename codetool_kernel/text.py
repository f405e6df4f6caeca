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


def one_line(value: str | BaseException, limit: int = 300) -> str:
    """A message's first non-blank line, whitespace runs collapsed, cut at `limit` (no message: the exception's type)."""
    text = next((" ".join(line.split()) for line in str(value).splitlines() if line.strip()), "")
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    return truncate(text, limit)
