"""The SoPR judge: an LLM labels each answer Solved, Unsure or Unsolved through a forced function call.

Every label is cached in `RUN_DIR/eval/judge_cache.sqlite`, keyed by query, answer, judge model,
prompt version and round, so judging a run again costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.llm import LLMClient
from codetool_kernel.errors import DataError, EndpointError
from evaluation.prompts import JUDGE_PROMPT_VERSION, JUDGE_SYSTEM, JUDGE_USER, LABELS, VERDICT_FUNCTION, VERDICT_TOOL

CACHE_FILE = "judge_cache.sqlite"
LABEL_SCORES = {"Solved": 1.0, "Unsure": 0.5, "Unsolved": 0.0}
JUDGE_ATTEMPTS = 3
JUDGE_MAX_TOKENS = 512
_MISSING_REASON = "no final answer"


@dataclass(frozen=True)
class JudgePrompt:
    """What the judge is asked and how it answers: the text, the forced function and its label field."""

    version: str
    """Names the exact wording (and is part of every cache key)."""
    user: str
    """The user message, with `{query}` and `{answer}` where they go."""
    tool: dict[str, Any]
    label_field: str
    system: str | None = None
    source: str = "codetool"
    """Where the text comes from: `codetool` (ours) or the file it was read from."""
    labels: tuple[str, ...] = field(default=LABELS)

    @property
    def function(self) -> str:
        return str(self.tool["function"]["name"])

    def messages(self, query: str, answer: str) -> list[dict[str, str]]:
        user = self.user.replace("{query}", query).replace("{answer}", answer)
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": user}]


CODETOOL_JUDGE = JudgePrompt(
    version=JUDGE_PROMPT_VERSION,
    system=JUDGE_SYSTEM.format(function=VERDICT_FUNCTION),
    user=JUDGE_USER,
    tool=VERDICT_TOOL,
    label_field="label",
)


@dataclass(frozen=True)
class Verdict:
    label: str
    reason: str
    cached: bool = False


def cache_key(query_id: str, answer: str, model: str, prompt_version: str, round_index: int) -> str:
    raw = json.dumps([query_id, answer, model, prompt_version, round_index], ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


class JudgeCache:
    """Judged labels in SQLite (WAL); safe to use from worker threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, query_id TEXT, round INTEGER, "
                "model TEXT, prompt_version TEXT, label TEXT, reason TEXT)"
            )
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{path}: unusable judge cache ({exc})") from None
        self._lock = threading.Lock()

    def get(self, key: str) -> Verdict | None:
        with self._lock:
            row = self._db.execute("SELECT label, reason FROM verdicts WHERE key = ?", (key,)).fetchone()
        return Verdict(row[0], row[1], cached=True) if row else None

    def put(
        self, key: str, query_id: str, round_index: int, model: str, verdict: Verdict, prompt_version: str
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, query_id, round_index, model, prompt_version, verdict.label, verdict.reason),
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Judge:
    """Labels (query, answer) pairs with `llm`, one independent judgement per round."""

    def __init__(
        self,
        llm: LLMClient,
        cache: JudgeCache,
        *,
        temperature: float | None = None,
        prompt: JudgePrompt = CODETOOL_JUDGE,
    ) -> None:
        self.llm = llm
        self.cache = cache
        self.temperature = temperature
        self.prompt = prompt
        self.requests = 0

    @property
    def model(self) -> str:
        return self.llm.config.model

    async def verdict(self, query_id: str, query: str, answer: str | None, round_index: int) -> Verdict:
        """The label of `answer` in round `round_index`; a missing answer is Unsolved without asking."""
        if answer is None or not answer.strip():
            return Verdict("Unsolved", _MISSING_REASON)
        key = cache_key(query_id, answer, self.model, self.prompt.version, round_index)
        cached = await asyncio.to_thread(self.cache.get, key)
        if cached is not None:
            return cached
        verdict = await self._ask(query_id, query, answer)
        await asyncio.to_thread(self.cache.put, key, query_id, round_index, self.model, verdict, self.prompt.version)
        return verdict

    async def _ask(self, query_id: str, query: str, answer: str) -> Verdict:
        messages = self.prompt.messages(query, answer)
        params: dict[str, object] = {
            "tools": [self.prompt.tool],
            "tool_choice": {"type": "function", "function": {"name": self.prompt.function}},
            "max_tokens": JUDGE_MAX_TOKENS,
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        problem = ""
        for _ in range(JUDGE_ATTEMPTS):
            self.requests += 1
            response = await self.llm.chat(messages, **params)
            verdict, problem = _read_verdict(response, self.prompt)
            if verdict is not None:
                return verdict
        raise EndpointError(
            f"judge {self.model} gave no usable verdict for query {query_id} in {JUDGE_ATTEMPTS} tries: {problem}"
        )


def _read_verdict(response: object, prompt: JudgePrompt) -> tuple[Verdict | None, str]:
    choices = getattr(response, "choices", None) or []
    calls = (choices[0].message.tool_calls or []) if choices else []
    call = next((c for c in calls if getattr(c, "function", None) and c.function.name == prompt.function), None)
    if call is None:
        return None, f"it did not call {prompt.function}"
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except json.JSONDecodeError:
        return None, "its arguments are not JSON"
    if not isinstance(arguments, dict):
        return None, "its arguments are not an object"
    given = arguments.get(prompt.label_field, "")
    label = {name.casefold(): name for name in prompt.labels}.get(str(given).strip().casefold())
    if label is None:
        return None, f"{prompt.label_field} {given!r} is not one of {', '.join(prompt.labels)}"
    return Verdict(label, str(arguments.get("reason") or "")), ""
