"""Scripted policies for the stand-in OpenAI server: what a model would write, step by step."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

STB_URL = "http://localhost:8080/virtual"


def step_of(body: dict[str, Any]) -> int:
    """Which step a chat request asks for (1 + the assistant turns already in it)."""
    return 1 + sum(1 for message in body["messages"] if message["role"] == "assistant")


def system_text(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "system")


def last_user_text(body: dict[str, Any]) -> str:
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


def by_step(steps: Sequence[Sequence[str]]) -> Callable[[dict[str, Any]], list[str]]:
    """A policy answering step k with `steps[k-1]` (one string per candidate)."""

    def policy(body: dict[str, Any]) -> list[str]:
        step = min(step_of(body), len(steps))
        return list(steps[step - 1])

    return policy


def step(number: int, title: str, code: str, *, finished: bool = False) -> str:
    """A well-formed step completion (the stop marker is added as a model would write it)."""
    tail = "[All Finished]\n" if finished else ""
    return f"##Step {number}: {title}\n```python\n{code.strip()}\n```\n{tail}[Step {number} Finished]"


def stb_body(tool: str, api: str, tool_input: dict[str, Any]) -> str:
    return (
        f'{{"category": "Data", "tool_name": "{tool}", "api_name": "{api}", '
        f'"tool_input": {tool_input!r}, "strip": "", "toolbench_key": KEY}}'
    )


def stb_key_from(body: dict[str, Any]) -> str:
    """The masked toolbench key exactly as the docs show it."""
    match = re.search(r'"toolbench_key": "([^"]+)"', system_text(body))
    assert match, "the StableToolBench docs must show the toolbench_key to send"
    return match.group(1)


def messi_policy(body: dict[str, Any]) -> list[str]:
    """StableToolBench query 588 (TheClique): search, details with a value from step 1, answer."""
    key = stb_key_from(body)
    prelude = f"import requests\nKEY = {key!r}\n"
    number = step_of(body)
    if number == 1:
        code = prelude + (
            f"found = requests.post({STB_URL!r}, json={stb_body('TheClique', 'Transfermarkt search', {'name': 'messi'})}).json()\n"
            "players = found['response']['Players']\n"
            "print('players:', [p['name'] for p in players][:3])"
        )
        return [step(1, "Search Transfermarkt for Messi", code)] * body.get("n", 1)
    if number == 2:
        code = prelude + (
            "first = players[0]\n"
            f"detail = requests.post({STB_URL!r}, json={{'category': 'Data', 'tool_name': 'TheClique', "
            "'api_name': 'Transfermarkt details', 'tool_input': {'type_s': 'spieler', 'other': first['slug']}, "
            "'strip': '', 'toolbench_key': KEY}).json()\n"
            "print('details of', first['name'], ':', str(detail['response'])[:200])"
        )
        return [step(2, "Look up the first player's details", code)] * body.get("n", 1)
    code = "print('Messi: clubs, managers and transfers were found above; first player:', players[0]['name'])"
    return [step(number, "Answer", code, finished=True)] * body.get("n", 1)


TMDB_BASE = "https://api.themoviedb.org/3"


def coppola_policy(body: dict[str, Any]) -> list[str]:
    """TMDB q0: number of movies directed by Sofia Coppola, in three steps."""
    number = step_of(body)
    if number == 1:
        code = (
            "import requests\n"
            f"search = requests.get({TMDB_BASE + '/search/person'!r}, headers=headers, params={{'query': 'Sofia Coppola'}})\n"
            "search.raise_for_status()\n"
            "person_id = search.json()['results'][0]['id']\n"
            "print('person id:', person_id)"
        )
        return [step(1, "Find Sofia Coppola's person id", code)] * body.get("n", 1)
    if number == 2:
        code = (
            "import requests\n"
            f"credits = requests.get(f'{TMDB_BASE}/person/{{person_id}}/movie_credits', headers=headers).json()\n"
            "directed = [c['title'] for c in credits['crew'] if c.get('job') == 'Director']\n"
            "print('directed:', len(directed))"
        )
        return [step(2, "Count the movies she directed", code)] * body.get("n", 1)
    return [step(number, "Answer", "print(f'Sofia Coppola directed {len(directed)} movies.')", finished=True)] * body.get("n", 1)
