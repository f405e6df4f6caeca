"""The policy's prompts: instruction, task and step feedback.

The built-in templates are package data (`agent/templates/`); the config's `prompts` section (or
`overrides={"prompts": ...}`) replaces any of them. Every template is checked once: the
placeholders it uses must be exactly the ones this module fills.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from codetool_kernel.errors import ConfigError
from codetool_kernel.text import truncate
from rm.prompt import PriorStep

STEP_FINISHED = "[Step {k} Finished]"
ALL_FINISHED = "[All Finished]"

TEMPLATE_FIELDS = {
    "instruction": frozenset({"api_docs", "usage_notes", "feedback_chars"}),
    "task": frozenset({"query"}),
    "feedback": frozenset({"step", "next_step", "output"}),
}
"""The placeholders each template must use, and the only ones it may."""


def check_template(name: str, text: str) -> str:
    """`text` if it is a usable `name` template (`ConfigError` in one line otherwise)."""
    try:
        used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as exc:
        raise ConfigError(f"prompt template {name} is malformed: {exc} (write {{{{ and }}}} for literal braces)") from None
    expected = TEMPLATE_FIELDS[name]
    if used != expected:
        raise ConfigError(f"prompt template {name} uses {sorted(used)}, expected {sorted(expected)}")
    return text


@cache
def template(name: str) -> str:
    """The text of the built-in template `name`, validated against the fields this module fills."""
    text = resources.files("agent").joinpath("templates", f"{name}.txt").read_text(encoding="utf-8")
    try:
        return check_template(name, text)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (agent/templates/{name}.txt)") from None


def step_stop(step: int) -> str:
    """The stop string that ends step `step` (1-based)."""
    return STEP_FINISHED.format(k=step)


@dataclass(frozen=True)
class PromptTemplates:
    """The three templates a policy is prompted with; None stands for the built-in one."""

    instruction: str | None = None
    task: str | None = None
    feedback: str | None = None

    def __post_init__(self) -> None:
        for name in TEMPLATE_FIELDS:
            text = getattr(self, name)
            if text is not None:
                check_template(name, text)

    def text(self, name: str) -> str:
        given: str | None = getattr(self, name)
        return template(name) if given is None else given

    def build_instruction(self, api_docs: str, usage_notes: str, feedback_chars: int) -> str:
        return self.text("instruction").format(
            api_docs=api_docs.strip(), usage_notes=usage_notes.strip() or "-", feedback_chars=feedback_chars
        )

    def build_messages(
        self, instruction: str, query: str, history: Sequence[PriorStep], feedback_chars: int
    ) -> list[dict[str, str]]:
        """The chat messages that ask for step `len(history) + 1`."""
        messages = [
            {"role": "system", "content": instruction},
            {"role": "user", "content": self.text("task").format(query=query)},
        ]
        for number, turn in enumerate(history, start=1):
            messages.append({"role": "assistant", "content": turn.content})
            messages.append(
                {
                    "role": "user",
                    "content": self.text("feedback").format(
                        step=number,
                        next_step=number + 1,
                        output=truncate(turn.output, feedback_chars) or "(nothing was printed)",
                    ),
                }
            )
        return messages


BUILTIN_PROMPTS = PromptTemplates()


def build_instruction(api_docs: str, usage_notes: str, feedback_chars: int) -> str:
    """The built-in instruction for a tool set."""
    return BUILTIN_PROMPTS.build_instruction(api_docs, usage_notes, feedback_chars)


def build_messages(
    instruction: str, query: str, history: Sequence[PriorStep], feedback_chars: int
) -> list[dict[str, str]]:
    """The chat messages, from the built-in templates, that ask for step `len(history) + 1`."""
    return BUILTIN_PROMPTS.build_messages(instruction, query, history, feedback_chars)
