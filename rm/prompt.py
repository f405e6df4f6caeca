"""The PRM's judging prompt, shared by live scoring and the training-data export.

Both sides must build the exact same text, or the PRM is scored on prompts it was never trained on;
hence one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codetool_kernel.errors import ConfigError
from codetool_kernel.text import truncate

DEFAULT_ANSWER_WORDS = ("yes", "no")

_INSTRUCTIONS = """\
You review one step of a Python program that is being written, step by step, to answer a user \
query by calling the APIs described below. The user message holds the candidate for the next step.
Judge whether this step is likely to lead to a complete and correct answer to the query: it calls \
suitable APIs with sensible arguments, builds on what the previous steps found, and moves the task \
forward.
Reply with one word only: "{yes}" if the step is promising, "{no}" if it is not."""


@dataclass(frozen=True)
class PriorStep:
    """A step already chosen on the path: its text (plan and code) and what its code printed."""

    content: str
    output: str


def build_prm_messages(
    *,
    api_docs: str,
    query: str,
    previous: Sequence[PriorStep],
    candidate: str,
    output_chars: int = 2000,
    answer_words: tuple[str, str] = DEFAULT_ANSWER_WORDS,
) -> list[dict[str, str]]:
    """Chat messages asking the PRM whether `candidate` is a promising next step.

    system: judging instructions, the API information, the query and, after the first step, the
    previous steps with their output (each output cut to `output_chars`); user: the candidate.
    """
    yes, no = check_answer_words(answer_words)
    sections = [
        _INSTRUCTIONS.format(yes=yes, no=no),
        f"## API information\n{api_docs.strip()}",
        f"## Query\n{query.strip()}",
    ]
    if previous:
        steps = "\n\n".join(
            f"### Step {number}\n{step.content.strip()}\n#### Output of step {number}\n"
            f"{truncate(step.output, output_chars)}"
            for number, step in enumerate(previous, start=1)
        )
        sections.append(f"## Previous steps\n{steps}")
    return [
        {"role": "system", "content": "\n\n".join(sections)},
        {"role": "user", "content": candidate},
    ]


def check_answer_words(answer_words: tuple[str, str]) -> tuple[str, str]:
    """Return the (yes, no) words, or raise `ConfigError` unless they are two different non-empty words."""
    if len(answer_words) != 2 or not all(w.strip() for w in answer_words) or answer_words[0] == answer_words[1]:
        raise ConfigError(f"answer_words must be two different non-empty words, got {answer_words!r}")
    return answer_words[0], answer_words[1]
