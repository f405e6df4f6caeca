"""Final answers: what the policy printed, or an answer an LLM writes from the steps' useful output.

Two styles. `codetool` (stored in `RUN_DIR/eval/answers.json`): the policy's printed answer, and an
LLM writes the missing ones. `reference` (`answers_reference.json`), the reference release's protocol:
an LLM writes every answer from what each chosen step set out to do and its useful API output.
Each answer records how it was made (`policy`, `llm`, or `none` when no step printed anything
useful) and is reused while its trajectory, writer model and prompt version stay the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.llm import LLMClient
from agent.trajectory import Trajectory
from codetool_kernel.errors import ConfigError, DataError, EndpointError
from codetool_kernel.files import read_json, write_json_atomic
from codetool_kernel.nodepaths import STATUS_OK
from codetool_kernel.text import truncate
from evaluation.prompts import (
    ANSWER_PROMPT_VERSION,
    ANSWER_SYSTEM,
    ANSWER_USER,
    REFERENCE_ANSWER_PROMPT_VERSION,
    REFERENCE_ANSWER_SYSTEM,
    REFERENCE_ANSWER_USER,
    REFERENCE_STEP_OUTPUT,
)
from evaluation.rundata import RunData

ANSWERS_FILE = "answers.json"
REFERENCE_ANSWERS_FILE = "answers_reference.json"
STEP_OUTPUT_CHARS = 1500
REFERENCE_STEP_OUTPUT_CHARS = 3500
ALL_OUTPUT_CHARS = 8000
ANSWER_MAX_TOKENS = 512

_ERROR_LIKE = re.compile(
    r"""^\s*traceback\b
    | ^\s*[\w.]*(error|exception)\s*:
    | ["']error["']\s*:\s*["'][^"'\s]
    | ["']?status(_code)?["']?\s*[:=]\s*[45]\d\d\b
    | \b(rate[ -]limit|too\ many\ requests|unauthori[sz]ed|forbidden|not\ found|invalid\ api\ key)\b
    | \bfunction\ executing\ from\b""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)


def looks_like_error(output: str) -> bool:
    """Whether a step's output reports a failure rather than data (tracebacks, error fields, HTTP 4xx/5xx)."""
    return bool(_ERROR_LIKE.search(output))


def useful_outputs(trajectory: Trajectory) -> list[tuple[str, str]]:
    """(path, output) of the chosen steps that ran and printed something that is not an error."""
    return [
        (node.path, truncate(node.stdout.strip(), STEP_OUTPUT_CHARS))
        for node in trajectory.chosen_nodes()
        if _useful(node.code, node.status, node.stdout)
    ]


def trajectory_digest(trajectory: Trajectory) -> str:
    return hashlib.sha256(trajectory.model_dump_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FinalAnswer:
    """A query's final answer and how it was made."""

    query_id: str
    answer: str | None
    method: str
    """`policy` (printed by the last step), `llm` (written from the outputs), `none` (nothing to go on)."""
    digest: str
    sources: tuple[str, ...] = ()
    """Paths of the steps whose output the writer saw."""
    writer: str | None = None
    prompt_version: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FinalAnswer:
        return cls(**{**data, "sources": tuple(data.get("sources") or ())})


def answer_messages(query: str, outputs: list[tuple[str, str]]) -> list[dict[str, str]]:
    shown = "\n\n".join(f"[step {path}]\n{text}" for path, text in outputs)
    return [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": ANSWER_USER.format(query=query, outputs=truncate(shown, ALL_OUTPUT_CHARS))},
    ]


def reference_answer_messages(trajectory: Trajectory) -> tuple[list[dict[str, str]], tuple[str, ...]]:
    """The reference protocol's writer prompt (each useful step's purpose and API output) and its source steps."""
    kept = [node for node in trajectory.chosen_nodes() if _useful(node.code, node.status, node.stdout)]
    shown = "\n\n".join(
        REFERENCE_STEP_OUTPUT.format(
            step=number, title=node.title or "(untitled)", output=truncate(node.stdout.strip(), REFERENCE_STEP_OUTPUT_CHARS)
        )
        for number, node in enumerate(kept, start=1)
    )
    messages = [
        {"role": "system", "content": REFERENCE_ANSWER_SYSTEM},
        {"role": "user", "content": REFERENCE_ANSWER_USER.format(query=trajectory.query, outputs=shown)},
    ]
    return messages, tuple(node.path for node in kept)


def _useful(code: str, status: int, stdout: str) -> bool:
    text = stdout.strip()
    return bool(code) and status == STATUS_OK and bool(text) and not looks_like_error(text)


@dataclass(frozen=True)
class AnswerStyle:
    """How a run's final answers are made and where they are kept."""

    name: str
    file: str
    prompt_version: str
    always_write: bool
    """The LLM writes every answer (reference protocol), not only those the policy did not print."""


CODETOOL_ANSWERS = AnswerStyle("codetool", ANSWERS_FILE, ANSWER_PROMPT_VERSION, always_write=False)
REFERENCE_ANSWERS = AnswerStyle("reference", REFERENCE_ANSWERS_FILE, REFERENCE_ANSWER_PROMPT_VERSION, always_write=True)


def load_answers(path: Path) -> dict[str, FinalAnswer]:
    if not path.exists():
        return {}
    data = read_json(path)
    try:
        return {query_id: FinalAnswer.from_json(entry) for query_id, entry in data["answers"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not an answers file ({type(exc).__name__}: {exc})") from None


class AnswerWriter:
    """Makes the final answer of every finished query of a run; `llm` writes the ones the policy did not."""

    def __init__(self, llm: LLMClient | None, style: AnswerStyle = CODETOOL_ANSWERS) -> None:
        self.llm = llm
        self.style = style

    @property
    def model(self) -> str | None:
        return self.llm.config.model if self.llm else None

    async def answers_for(self, run: RunData) -> dict[str, FinalAnswer]:
        """Answers of every query that has a trajectory (cached ones reused), saved to the run's eval folder."""
        path = run.eval_dir / self.style.file
        known = load_answers(path)
        wanted: dict[str, FinalAnswer] = {}
        to_write: list[tuple[str, Trajectory, str]] = []
        for result, trajectory in run.trajectories():
            digest = trajectory_digest(trajectory)
            cached = known.get(result.query_id)
            if cached is not None and self._still_valid(cached, digest):
                wanted[result.query_id] = cached
            elif trajectory.final_answer is not None and not self.style.always_write:
                wanted[result.query_id] = FinalAnswer(result.query_id, trajectory.final_answer, "policy", digest)
            else:
                to_write.append((result.query_id, trajectory, digest))
        if to_write and self.llm is None:
            raise ConfigError(
                f"{len(to_write)} trajectories have no final answer: name a writer model (--answer-model)"
            )
        written = await asyncio.gather(*(self._write(*item) for item in to_write), return_exceptions=True)
        failures = [item for item in written if isinstance(item, BaseException)]
        wanted.update({answer.query_id: answer for answer in written if isinstance(answer, FinalAnswer)})
        write_json_atomic(path, {"format": 1, "answers": {qid: asdict(answer) for qid, answer in wanted.items()}})
        if failures:
            raise EndpointError(f"{len(failures)} final answers could not be written: {failures[0]}")
        return wanted

    def _still_valid(self, cached: FinalAnswer, digest: str) -> bool:
        if cached.digest != digest:
            return False
        if cached.method != "llm":
            return True
        return cached.writer == self.model and cached.prompt_version == self.style.prompt_version

    async def _write(self, query_id: str, trajectory: Trajectory, digest: str) -> FinalAnswer:
        if self.style.always_write:
            messages, sources = reference_answer_messages(trajectory)
        else:
            outputs = useful_outputs(trajectory)
            messages, sources = answer_messages(trajectory.query, outputs), tuple(path for path, _ in outputs)
        if not sources:
            return FinalAnswer(query_id, None, "none", digest)
        assert self.llm is not None
        response = await self.llm.chat(messages, temperature=0.0, max_tokens=ANSWER_MAX_TOKENS)
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        return FinalAnswer(
            query_id,
            text or None,
            "llm",
            digest,
            sources=sources,
            writer=self.model,
            prompt_version=self.style.prompt_version,
        )
