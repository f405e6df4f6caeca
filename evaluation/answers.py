"""Final answers: what the policy printed, or an answer an LLM writes from the steps' useful output.

Stored in `RUN_DIR/eval/answers.json` with how each was made (`policy`, `llm`, or `none` when no
step printed anything useful). An answer is reused while its trajectory, writer model and prompt
version stay the same.
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
from agent.trajectory import STATUS_OK, Trajectory
from codetool.errors import ConfigError, DataError, EndpointError
from codetool.files import read_json, write_json_atomic
from codetool.text import truncate
from evaluation.prompts import ANSWER_PROMPT_VERSION, ANSWER_SYSTEM, ANSWER_USER
from evaluation.rundata import RunData

ANSWERS_FILE = "answers.json"
STEP_OUTPUT_CHARS = 1500
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
    kept = []
    for node in trajectory.chosen_nodes():
        text = node.stdout.strip()
        if node.code and node.status == STATUS_OK and text and not looks_like_error(text):
            kept.append((node.path, truncate(text, STEP_OUTPUT_CHARS)))
    return kept


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

    def __init__(self, llm: LLMClient | None) -> None:
        self.llm = llm

    @property
    def model(self) -> str | None:
        return self.llm.config.model if self.llm else None

    async def answers_for(self, run: RunData) -> dict[str, FinalAnswer]:
        """Answers of every query that has a trajectory (cached ones reused), saved to the run's eval folder."""
        path = run.eval_dir / ANSWERS_FILE
        known = load_answers(path)
        wanted: dict[str, FinalAnswer] = {}
        to_write: list[tuple[str, Trajectory, str]] = []
        for result, trajectory in run.trajectories():
            digest = trajectory_digest(trajectory)
            cached = known.get(result.query_id)
            if cached is not None and self._still_valid(cached, digest):
                wanted[result.query_id] = cached
            elif trajectory.final_answer is not None:
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
        return cached.writer == self.model and cached.prompt_version == ANSWER_PROMPT_VERSION

    async def _write(self, query_id: str, trajectory: Trajectory, digest: str) -> FinalAnswer:
        outputs = useful_outputs(trajectory)
        if not outputs:
            return FinalAnswer(query_id, None, "none", digest)
        assert self.llm is not None
        response = await self.llm.chat(
            answer_messages(trajectory.query, outputs), temperature=0.0, max_tokens=ANSWER_MAX_TOKENS
        )
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        return FinalAnswer(
            query_id,
            text or None,
            "llm",
            digest,
            sources=tuple(path for path, _ in outputs),
            writer=self.model,
            prompt_version=ANSWER_PROMPT_VERSION,
        )
