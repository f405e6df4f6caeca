"""A scripted benchmark: 10 StableToolBench and 5 TMDB queries with outcomes chosen by hand.

One stand-in OpenAI server plays the policy, the final-answer writer and the judge. It runs on
its own thread, so that `python -m agent run` and `python -m evaluation` can run as real
subprocesses (and be interrupted) while it serves them. The expected metric values in the
tests follow from the scripts below; each script says what it leads to.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evaluation.prompts import ANSWER_SYSTEM
from tests.support.openai_stub import OpenAIStub, Reply, ToolCall
from tests.support.policies import TMDB_BASE, coppola_policy, messi_policy, step, step_of

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
STB_DATA = DATA / "stabletoolbench"
TMDB_QUERIES = DATA / "restbench" / "tmdb_queries.json"
TMDB_SPEC = DATA / "restbench" / "tmdb_spec.json"
STB_GROUP = "G1_instruction"
MODEL = "stub-model"
JUDGE = "judge-model"
MAX_DEPTH = 3
BLOCKING_QUERY = "2144"
FAILING_QUERY = "2213"


def _tmdb_get(variable: str, path: str, pick: str, params: dict[str, str] | None = None) -> str:
    """Code that GETs TMDB `path` (placeholders filled from earlier steps), keeps `pick` of the JSON, prints it."""
    call = f"requests.get(f'{TMDB_BASE}{path}', headers=headers, params={params!r})"
    return f"import requests\n{variable} = {call}.json(){pick}\nprint('{variable}:', {variable})"


def _stb_steps(query_id: str, number: int, body: dict[str, Any]) -> list[str]:
    """The candidates of step `number` of a StableToolBench query (the stub repeats them up to n)."""
    if query_id == "588":  # 3 steps calling the virtual API, answer printed: Solved
        return messi_policy(body)
    if query_id == "608":  # 1 step, answer printed: Solved
        return [step(1, "Answer", "print('gmhikaru has 3 clips: Opening, Blunder, Mate')", finished=True)]
    if query_id == "1073":  # step 1: one candidate fails, the other is kept; step 2 answers: Unsure
        if number == 1:
            return [
                step(1, "Broken lookup", "data = {}\nprint(data['sites'])"),
                step(1, "List sites", "sites = ['partycity.com', 'evite.com']\nprint('sites:', sites)"),
            ]
        return [step(2, "Answer", "print('Popular sites:', ', '.join(sites))", finished=True)]
    if query_id == "1572":  # never finishes: the writer answers from 3 useful outputs: Solved
        return [step(number, f"Fetch part {number}", f"print('media source {number}: credibility {90 + number}')")]
    if query_id == "1856":  # every step raises: no useful output, no answer: Unsolved without a judge call
        return [step(number, "Divide", "print(1 / 0)")]
    if query_id == "2121":  # a prose answer without code: Unsolved
        return [
            "##Step 1: Answer\nI could not find the world ranking of the players.\n[All Finished]\n[Step 1 Finished]"
        ]
    if query_id == BLOCKING_QUERY:  # 1 step, answer printed: Solved in one round, Unsure in the others
        return [step(1, "Quotes", "print('Ricciardo: never give up on your dreams')", finished=True)]
    if query_id == FAILING_QUERY:  # the endpoint fails (HTTP 500): the query fails, counts as Unsolved
        raise RuntimeError("scripted endpoint failure")
    if query_id == "2354":  # step 1 prints an error-like reply, steps 2-3 data; the writer answers: Solved
        if number == 1:
            return [step(1, "Teams", "print({'error': 'Rate limit exceeded'})")]
        return [step(number, "Teams", f"print('teams page {number}: Arsenal, Chelsea')")]
    if query_id == "2399":  # 1 step, answer printed: Unsure
        return [step(1, "Game", "print('Game 12345 on 2019-02-01: Boston Celtics 110')", finished=True)]
    raise AssertionError(f"no script for query {query_id}")


def _tmdb_steps(query_id: str, number: int, body: dict[str, Any]) -> list[str]:
    if query_id == "q0":  # gold path called, answer printed: Solved
        return coppola_policy(body)
    if query_id == "q1":  # gold path called, answer printed: Solved
        if number == 1:
            search = _tmdb_get("movie_id", "/search/movie", "['results'][0]['id']", {"query": "The Dark Knight"})
            return [step(1, "Find the movie", search)]
        if number == 2:
            return [step(2, "Read the cast", _tmdb_get("lead", "/movie/{movie_id}/credits", "['cast'][0]['name']"))]
        return [step(3, "Answer", "print(f'The lead actor is {lead}.')", finished=True)]
    if query_id == "q2":  # only half of the gold path: Unsure
        if number == 1:
            return [step(1, "Top rated", _tmdb_get("top", "/movie/top_rated", "['results'][0]['title']"))]
        return [step(2, "Answer", "print(f'The top-rated movie is {top}; its director is unknown.')", finished=True)]
    if query_id == "q3":  # no API called: Unsolved
        return [step(1, "Answer", "print('Here is an image of Star Wars.')", finished=True)]
    if query_id == "q4":  # gold path called, never finishes; the writer answers: Solved
        if number == 1:
            search = _tmdb_get("company_id", "/search/company", "['results'][0]['id']", {"query": "Walt Disney"})
            return [step(1, "Find the company", search)]
        return [step(number, "Logo", _tmdb_get("logo", "/company/{company_id}/images", "['logos'][0]['file_path']"))]
    raise AssertionError(f"no script for query {query_id}")


JUDGED = {
    "588": "Solved", "608": "Solved", "1073": "Unsure", "1572": "Solved", "2121": "Unsolved",
    "2354": "Solved", "2399": "Unsure",
    "q0": "Solved", "q1": "Solved", "q2": "Unsure", "q3": "Unsolved", "q4": "Solved",
}  # fmt: skip


@dataclass
class ScriptedServer:
    """The stand-in server's policy: routes each request to the policy, writer or judge script."""

    texts: dict[str, str]
    """Query text -> query id."""
    block: threading.Event = field(default_factory=threading.Event)
    """While clear, the blocking query's step requests wait (the run is interrupted meanwhile)."""
    reached: threading.Event = field(default_factory=threading.Event)
    judged: Counter[str] = field(default_factory=Counter)
    writer_prompts: dict[str, str] = field(default_factory=dict)

    def query_of(self, text: str) -> str:
        matches = [query_id for query, query_id in self.texts.items() if query in text]
        assert len(matches) == 1, f"cannot tell the query of {text[:200]!r}"
        return matches[0]

    def __call__(self, body: dict[str, Any]) -> list[Reply | str]:
        messages = body["messages"]
        if body.get("tools"):
            return [self._judge(messages[-1]["content"])]
        if messages[0]["content"] == ANSWER_SYSTEM:
            query_id = self.query_of(messages[1]["content"])
            self.writer_prompts[query_id] = messages[1]["content"]
            return [f"Written answer for {query_id}."]
        query_id = self.query_of(messages[1]["content"])
        if query_id == BLOCKING_QUERY and not self.block.is_set():
            self.reached.set()
            self.block.wait(120)
        scripts = _tmdb_steps if query_id.startswith("q") else _stb_steps
        return list(scripts(query_id, step_of(body), body))

    def _judge(self, content: str) -> Reply:
        query_id = self.query_of(content)
        self.judged[query_id] += 1
        label = JUDGED.get(query_id) or ("Solved" if self.judged[query_id] == 1 else "Unsure")
        return Reply(
            content=None, tool_calls=[ToolCall("give_verdict", {"reason": f"scripted for {query_id}", "label": label})]
        )

    def step_requests(self, requests: list[dict[str, Any]]) -> Counter[str]:
        """How many policy step requests each query got among `requests`."""
        counted: Counter[str] = Counter()
        for body in requests:
            if not body.get("tools") and body["messages"][0]["content"] != ANSWER_SYSTEM:
                counted[self.query_of(body["messages"][1]["content"])] += 1
        return counted


def query_texts() -> dict[str, str]:
    stb = json.loads((STB_DATA / "filter_test_instruction" / f"{STB_GROUP}.json").read_text())[:10]
    tmdb = json.loads(TMDB_QUERIES.read_text())[:5]
    return {**{q["query"]: str(q["query_id"]) for q in stb}, **{q["query"]: q["qid"] for q in tmdb}}


class StubThread:
    """An `OpenAIStub` serving from its own thread and event loop."""

    def __init__(self, policy: Callable[[dict[str, Any]], Any], *, latency_s: float = 0.0) -> None:
        self.policy = policy
        self.latency_s = latency_s
        self._loop = asyncio.new_event_loop()
        # Policies run on executor threads; blocking or slow ones must not starve the others.
        self._loop.set_default_executor(ThreadPoolExecutor(max_workers=64))
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-stub", daemon=True)
        self.stub: OpenAIStub | None = None

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        self.stub = OpenAIStub(self.policy, model=MODEL, latency_s=self.latency_s)
        asyncio.run_coroutine_threadsafe(self.stub.__aenter__(), self._loop).result(30)
        return self.stub

    def __exit__(self, *exc: object) -> None:
        assert self.stub is not None
        asyncio.run_coroutine_threadsafe(self.stub.__aexit__(None, None, None), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


def python_module(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "OPENAI_API_KEY": "test", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def run_args(base_url: str, out: Path, config: Path, *extra: str) -> list[str]:
    return ["run", "--out", str(out), "--base-url", base_url, "--model", MODEL, "--config", str(config),
            "--max-depth", str(MAX_DEPTH), "--no-progress", *extra]  # fmt: skip


def stb_args(base_url: str, out: Path, config: Path) -> list[str]:
    return [*run_args(base_url, out, config), "--benchmark", "stabletoolbench", "--data", str(STB_DATA),
            "--group", STB_GROUP, "--filtered", "--limit", "10", "--concurrency", "2"]  # fmt: skip


def tmdb_args(base_url: str, out: Path, config: Path, *extra: str) -> list[str]:
    return [*run_args(base_url, out, config), "--benchmark", "tmdb", "--data", str(TMDB_QUERIES),
            "--spec", str(TMDB_SPEC), "--limit", "5", "--n", "1", *extra]  # fmt: skip


@dataclass
class Sessions:
    """What the scripted runs did, for the runner and evaluation tests to check."""

    server: ScriptedServer
    stub: OpenAIStub
    stb: Path
    tmdb: Path
    interrupted: tuple[int, str, str]
    files_after_interrupt: dict[str, str]
    """Trajectory file name -> its text, right after the interruption."""
    resumed: tuple[int, str, str]
    resumed_requests: Counter[str]
    corrupted: str
    tmdb_run: tuple[int, str, str]
    prices: dict[str, dict[str, float]]


def write_agent_config(folder: Path) -> Path:
    config = folder / "agent.yaml"
    config.write_text("llm:\n  max_retries: 0\n  api_key: test\nsandbox:\n  limits:\n    timeout_s: 20\n")
    return config


def play_sessions(folder: Path, server: ScriptedServer, stub: OpenAIStub) -> Sessions:
    """Run StableToolBench (interrupted on the blocking query, a file corrupted, resumed) and TMDB."""
    config = write_agent_config(folder)
    stb = folder / "run-stb"
    process = python_module("agent", *stb_args(stub.base_url, stb, config))
    if not server.reached.wait(120):
        process.kill()
        raise AssertionError(f"the blocking query was never asked for: {finish(process)}")
    process.send_signal(signal.SIGINT)
    interrupted = finish(process)
    files = {path.name: path.read_text() for path in (stb / "trajectories").iterdir()}
    corrupted = "608"
    target = stb / "trajectories" / f"{corrupted}.json"
    target.write_text(target.read_text()[:100])
    server.block.set()
    before = len(stub.requests)
    resumed = finish(python_module("agent", *stb_args(stub.base_url, stb, config)))
    resumed_requests = server.step_requests(stub.requests[before:])
    prices = {MODEL: {"prompt": 1.5, "completion": 4.0}}
    price_file = folder / "prices.yaml"
    price_file.write_text(json.dumps(prices))
    tmdb = folder / "run-tmdb"
    tmdb_run = finish(python_module("agent", *tmdb_args(stub.base_url, tmdb, config, "--prices", str(price_file))))
    return Sessions(server, stub, stb, tmdb, interrupted, files, resumed, resumed_requests, corrupted, tmdb_run, prices)


_PLAYED: list[Sessions] = []


@pytest.fixture(scope="session")
def scripted_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sessions]:
    """The scripted benchmark, played once per test session; the server stays up for the evaluation.

    The runner and evaluation test folders both register this fixture; whichever sets it up
    first plays the runs and owns the server, the other reuses them.
    """
    if _PLAYED:
        yield _PLAYED[0]
        return
    server = ScriptedServer(query_texts())
    with StubThread(server) as stub:
        try:
            _PLAYED.append(play_sessions(tmp_path_factory.mktemp("scripted"), server, stub))
            yield _PLAYED[0]
        finally:
            _PLAYED.clear()
            server.block.set()
