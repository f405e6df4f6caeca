"""The policy's prompts: instruction, task and step feedback, read from `agent/templates/`.

Templates are package data, checked once when first loaded: every placeholder a
template needs must be one this module fills, and the other way round.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from codetool_kernel.errors import ConfigError
from codetool_kernel.text import truncate

STEP_FINISHED = "[Step {k} Finished]"
ALL_FINISHED = "[All Finished]"

_FIELDS = {
    "instruction": {"api_docs", "usage_notes", "feedback_chars"},
    "task": {"query"},
    "feedback": {"step", "next_step", "output"},
}


@cache
def template(name: str) -> str:
    """The text of template `name`, validated against the fields this module fills."""
    text = resources.files("agent").joinpath("templates", f"{name}.txt").read_text(encoding="utf-8")
    used = {field for _, field, _, _ in string.Formatter().parse(text) if field}
    if used != _FIELDS[name]:
        raise ConfigError(f"prompt template {name}.txt uses {sorted(used)}, expected {sorted(_FIELDS[name])}")
    return text


def step_stop(step: int) -> str:
    """The stop string that ends step `step` (1-based)."""
    return STEP_FINISHED.format(k=step)


@dataclass(frozen=True)
class StepTurn:
    """A chosen step as the policy wrote it and what it printed."""

    content: str
    output: str


def build_instruction(api_docs: str, usage_notes: str, feedback_chars: int) -> str:
    return template("instruction").format(
        api_docs=api_docs.strip(), usage_notes=usage_notes.strip() or "-", feedback_chars=feedback_chars
    )


def build_messages(
    instruction: str, query: str, history: Sequence[StepTurn], feedback_chars: int
) -> list[dict[str, str]]:
    """The chat messages that ask for step `len(history) + 1`."""
    messages = [
        {"role": "system", "content": instruction},
        {"role": "user", "content": template("task").format(query=query)},
    ]
    for number, turn in enumerate(history, start=1):
        messages.append({"role": "assistant", "content": turn.content})
        messages.append(
            {
                "role": "user",
                "content": template("feedback").format(
                    step=number,
                    next_step=number + 1,
                    output=truncate(turn.output, feedback_chars) or "(nothing was printed)",
                ),
            }
        )
    return messages
