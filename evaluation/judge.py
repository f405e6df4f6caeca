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
from dataclasses import dataclass
from pathlib import Path

from agent.llm import LLMClient
from codetool.errors import DataError, EndpointError
from evaluation.prompts import JUDGE_PROMPT_VERSION, JUDGE_SYSTEM, JUDGE_USER, LABELS, VERDICT_FUNCTION, VERDICT_TOOL

CACHE_FILE = "judge_cache.sqlite"
LABEL_SCORES = {"Solved": 1.0, "Unsure": 0.5, "Unsolved": 0.0}
JUDGE_ATTEMPTS = 3
JUDGE_MAX_TOKENS = 512
_MISSING_REASON = "no final answer"


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

    def put(self, key: str, query_id: str, round_index: int, model: str, verdict: Verdict) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, query_id, round_index, model, JUDGE_PROMPT_VERSION, verdict.label, verdict.reason),
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Judge:
    """Labels (query, answer) pairs with `llm`, one independent judgement per round."""

    def __init__(self, llm: LLMClient, cache: JudgeCache, *, temperature: float | None = None) -> None:
        self.llm = llm
        self.cache = cache
        self.temperature = temperature
        self.requests = 0

    @property
    def model(self) -> str:
        return self.llm.config.model

    async def verdict(self, query_id: str, query: str, answer: str | None, round_index: int) -> Verdict:
        """The label of `answer` in round `round_index`; a missing answer is Unsolved without asking."""
        if answer is None or not answer.strip():
            return Verdict("Unsolved", _MISSING_REASON)
        key = cache_key(query_id, answer, self.model, JUDGE_PROMPT_VERSION, round_index)
        cached = await asyncio.to_thread(self.cache.get, key)
        if cached is not None:
            return cached
        verdict = await self._ask(query_id, query, answer)
        await asyncio.to_thread(self.cache.put, key, query_id, round_index, self.model, verdict)
        return verdict

    async def _ask(self, query_id: str, query: str, answer: str) -> Verdict:
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM.format(function=VERDICT_FUNCTION)},
            {"role": "user", "content": JUDGE_USER.format(query=query, answer=answer)},
        ]
        params: dict[str, object] = {
            "tools": [VERDICT_TOOL],
            "tool_choice": {"type": "function", "function": {"name": VERDICT_FUNCTION}},
            "max_tokens": JUDGE_MAX_TOKENS,
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        problem = ""
        for _ in range(JUDGE_ATTEMPTS):
            self.requests += 1
            response = await self.llm.chat(messages, **params)
            verdict, problem = _read_verdict(response)
            if verdict is not None:
                return verdict
        raise EndpointError(
            f"judge {self.model} gave no usable verdict for query {query_id} in {JUDGE_ATTEMPTS} tries: {problem}"
        )


def _read_verdict(response: object) -> tuple[Verdict | None, str]:
    choices = getattr(response, "choices", None) or []
    calls = (choices[0].message.tool_calls or []) if choices else []
    call = next((c for c in calls if getattr(c, "function", None) and c.function.name == VERDICT_FUNCTION), None)
    if call is None:
        return None, f"it did not call {VERDICT_FUNCTION}"
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except json.JSONDecodeError:
        return None, "its arguments are not JSON"
    if not isinstance(arguments, dict):
        return None, "its arguments are not an object"
    label = {name.casefold(): name for name in LABELS}.get(str(arguments.get("label", "")).strip().casefold())
    if label is None:
        return None, f"label {arguments.get('label')!r} is not one of {', '.join(LABELS)}"
    return Verdict(label, str(arguments.get("reason") or "")), ""
