"""Tolerant parsing of one step completion into its title, code and markers.

Handles what models really write: a missing or unclosed fence, several fences, text after
the step marker, several steps in one reply (the first is kept), an empty completion.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from agent.prompts import ALL_FINISHED

_HEADER = re.compile(r"^[ \t]*#{1,3}[ \t]*Step[ \t]*(\d+)[ \t]*[:.\-]?[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_STEP_MARKER = re.compile(r"\[Step[ \t]*\d+[ \t]*Finished\]", re.IGNORECASE)
_CLOSED_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_OPEN_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*)\Z", re.DOTALL)
_CODE_LANGUAGES = {"", "python", "py", "python3"}


@dataclass(frozen=True)
class ParsedStep:
    """What one completion holds, after cutting it down to its first step."""

    text: str
    """The kept text of the step (first step only, up to its end marker)."""
    title: str
    code: str
    finished: bool
    """The step carries `[All Finished]`."""
    notes: tuple[str, ...] = ()
    """What had to be repaired, e.g. `several steps; kept the first`."""

    @property
    def has_code(self) -> bool:
        return bool(self.code.strip())

    @property
    def answer_text(self) -> str:
        """The step's prose with header, code and markers removed (a text-only final answer)."""
        prose = _CLOSED_FENCE.sub("", self.text)
        prose = _HEADER.sub("", prose).replace(ALL_FINISHED, "")
        return _STEP_MARKER.sub("", prose).strip()


def parse_step(completion: str | None) -> ParsedStep:
    """Parse a policy completion (stop string already removed by the server, or not)."""
    text = (completion or "").replace("\r\n", "\n")
    notes: list[str] = []
    if not text.strip():
        return ParsedStep(text="", title="", code="", finished=False, notes=("empty completion",))

    text, cut_notes = _first_step(text)
    notes.extend(cut_notes)
    header = _HEADER.search(text)
    title = header.group(2).strip() if header else ""
    if header is None:
        notes.append("no step header")
    code, code_notes = _extract_code(text)
    notes.extend(code_notes)
    return ParsedStep(text=text, title=title, code=code, finished=ALL_FINISHED in text, notes=tuple(notes))


def _first_step(text: str) -> tuple[str, list[str]]:
    notes = []
    marker = _STEP_MARKER.search(text)
    if marker:
        if text[marker.end() :].strip():
            notes.append("text after the step marker dropped")
        text = text[: marker.start()]
    headers = [m for m in _HEADER.finditer(text) if not _inside_fence(text, m.start())]
    if len(headers) > 1:
        notes.append("several steps; kept the first")
        text = text[: headers[1].start()]
    return text.rstrip() + "\n", notes


def _inside_fence(text: str, position: int) -> bool:
    return text.count("```", 0, position) % 2 == 1


def _extract_code(text: str) -> tuple[str, list[str]]:
    blocks = [body for lang, body in _CLOSED_FENCE.findall(text) if lang.lower() in _CODE_LANGUAGES]
    if blocks:
        notes = ["several code blocks joined"] if len(blocks) > 1 else []
        remainder = _CLOSED_FENCE.sub("", text)
        unclosed = _OPEN_FENCE.search(remainder)
        if unclosed and unclosed.group(1).lower() in _CODE_LANGUAGES:
            blocks.append(unclosed.group(2))
            notes.append("unclosed code block")
        return "\n".join(block.strip("\n") for block in blocks).strip("\n") + "\n", notes
    unclosed = _OPEN_FENCE.search(text)
    if unclosed and unclosed.group(1).lower() in _CODE_LANGUAGES:
        return _clean(unclosed.group(2)), ["unclosed code block"]
    bare = _bare_code(text)
    if bare:
        return bare, ["code without a fence"]
    return "", ["no code"]


def _clean(code: str) -> str:
    code = code.replace("```", "").replace(ALL_FINISHED, "")
    return code.strip("\n") + "\n" if code.strip() else ""


def _bare_code(text: str) -> str:
    """Unfenced code: the text minus header and markers, if it parses and does something."""
    body = _HEADER.sub("", text).replace(ALL_FINISHED, "").strip("\n")
    if not body.strip():
        return ""
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return ""
    acts = any(isinstance(node, (ast.Assign, ast.AugAssign, ast.Import, ast.ImportFrom, ast.For, ast.If,
                                 ast.With, ast.FunctionDef, ast.Try, ast.While))
               or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
               for node in tree.body)
    return body + "\n" if acts else ""
