"""The judge of the reference protocol, with its text ours or read from a StableToolBench checkout.

StableToolBench ships the text of its `check_answer_status` judge in
`toolbench/tooleval/evaluators/<evaluator>/template.txt`, as the description of that function; the
reference release judges with the same text. We do not ship it: `--stabletoolbench-dir` points at
the user's checkout and the text is read from there (the result says which text judged).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from codetool_kernel.errors import ConfigError
from evaluation.judge import JudgePrompt
from evaluation.prompts import (
    REFERENCE_JUDGE_PROMPT_VERSION,
    REFERENCE_JUDGE_USER,
    REFERENCE_VERDICT_FUNCTION,
    REFERENCE_VERDICT_TOOL,
)

STB_EVALUATOR = "tooleval_gpt-3.5-turbo_default"
STB_TEMPLATE = Path("toolbench") / "tooleval" / "evaluators" / STB_EVALUATOR / "template.txt"

_FUNCTION_BLOCK = re.compile(r"<function>\s*<name>\s*(?P<name>[^<]+?)\s*</name>\s*<description>(?P<text>.*?)</description>", re.S)


def reference_judge(stabletoolbench_dir: Path | None) -> JudgePrompt:
    """The `check_answer_status` judge: StableToolBench's text when a checkout is given, ours otherwise."""
    if stabletoolbench_dir is None:
        return JudgePrompt(
            version=REFERENCE_JUDGE_PROMPT_VERSION,
            user=REFERENCE_JUDGE_USER,
            tool=REFERENCE_VERDICT_TOOL,
            label_field="answer_status",
        )
    template = Path(stabletoolbench_dir) / STB_TEMPLATE
    text = stb_judge_text(template)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return JudgePrompt(
        version=f"stabletoolbench-{digest}",
        user=text,
        tool=REFERENCE_VERDICT_TOOL,
        label_field="answer_status",
        source=str(template),
    )


def stb_judge_text(template: Path) -> str:
    """The description of `check_answer_status` in a StableToolBench evaluator template."""
    try:
        content = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{template}: cannot read the StableToolBench judge template ({exc.strerror})") from None
    for block in _FUNCTION_BLOCK.finditer(content):
        if block.group("name") == REFERENCE_VERDICT_FUNCTION:
            text = block.group("text").strip()
            if "{query}" not in text or "{answer}" not in text:
                raise ConfigError(f"{template}: the {REFERENCE_VERDICT_FUNCTION} text lacks {{query}} or {{answer}}")
            return text
    raise ConfigError(f"{template}: no {REFERENCE_VERDICT_FUNCTION} function in the template")
