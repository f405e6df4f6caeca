"""End to end through the public API: `codetool.solve(..., tools="openapi")` over a real notes API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import codetool
from codetool import load_config
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import step, step_of, system_text
from tests.tools.conftest import API_KEY, TOKEN
from tests.tools.notes_api import NotesApi


def notes_policy(base: str) -> Any:
    """Step 1 lists the work notes with the preset headers, step 2 reads the newest one with a header of its
    own added, step 3 answers from what they found."""

    def policy(body: dict[str, Any]) -> list[str]:
        assert "API 1: listNotes" in system_text(body) and API_KEY not in str(body) and TOKEN not in str(body)
        if step_of(body) == 1:
            code = (
                "import requests\n"
                f"answer = requests.get({base + '/notes'!r}, headers=headers, params={{'tag': 'work'}})\n"
                "answer.raise_for_status()\n"
                "titles = [note['title'] for note in answer.json()]\n"
                "print('work notes:', titles)"
            )
            return [step(1, "List the work notes", code)] * body.get("n", 1)
        if step_of(body) == 2:
            code = (
                "import requests\n"
                "first = answer.json()[0]['id']\n"
                f"note = requests.get(f'{base}/notes/{{first}}', headers={{**headers, 'X-Trace': 'step-2'}}).json()\n"
                "print('newest work note:', note['title'])"
            )
            return [step(2, "Read the newest work note", code)] * body.get("n", 1)
        finish = "print('The work notes are: ' + '; '.join(titles) + f'; the newest is {note[\"title\"]}.')"
        return [step(3, "Answer", finish, finished=True)] * body.get("n", 1)

    return policy


async def test_solve_calls_an_openapi_spec_from_the_restricted_sandbox(notes_api: NotesApi, tmp_path: Path) -> None:
    spec = notes_api.write_spec(tmp_path)
    async with OpenAIStub(notes_policy(f"{notes_api.base_url}/v1")) as stub:
        overrides = {
            "llm": {"base_url": stub.base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
            "search": {"n": 1},
            "sandbox": {"backend": "restricted", "limits": {"timeout_s": 20}},
        }
        config = load_config(overrides=overrides, environ={})
        trajectory = await asyncio.to_thread(
            codetool.solve,
            "Which of my notes are tagged work?",
            tools="openapi",
            tool_options={"spec": str(spec), "secrets": {"apiKeyAuth": API_KEY, "bearerAuth": TOKEN}},
            config=config,
        )
    assert trajectory.stop_reason == "finished", [node.error for node in trajectory.nodes]
    assert trajectory.final_answer == (
        "The work notes are: Plan the team offsite; Quarterly report draft; the newest is Plan the team offsite."
    )
    listed = [entry for entry in notes_api.received if entry["path"] == "/v1/notes"]
    assert listed and listed[0]["headers"]["X-API-Key"] == API_KEY and listed[0]["query"] == {"tag": "work"}
    read = [entry for entry in notes_api.received if entry["path"] == "/v1/notes/3"]
    assert read and read[0]["headers"]["X-Trace"] == "step-2" and read[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert API_KEY not in trajectory.model_dump_json() and TOKEN not in trajectory.model_dump_json()
