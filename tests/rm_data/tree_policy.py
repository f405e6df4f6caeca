"""A scripted policy whose step tree has every kind of node: runs, raises, no code, text answers."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.policies import step, step_of, system_text

_FIRST_BODY = re.compile(r"JSON body: (\{.*\})")


def first_api_body(body: dict[str, Any]) -> dict[str, Any]:
    """The POST body the docs show for the query's first API (parameter descriptions as values)."""
    match = _FIRST_BODY.search(system_text(body))
    assert match, "the StableToolBench docs show a JSON body per API"
    return json.loads(match.group(1))


def tree_policy(body: dict[str, Any]) -> list[str]:
    """Two different candidates per step, for n=2 and max depth 3.

    step 1: [call the first API and keep `first`, code that raises KeyError]
    step 2: [use `first` and go on, prose without code or [All Finished]]
    step 3: [final answer printed by code using `first`, final answer in text]
    """
    number = step_of(body)
    if number == 1:
        call = (
            "import requests\n"
            f"first = requests.post('http://localhost:8080/virtual', json={first_api_body(body)!r}).json()\n"
            "print('keys:', sorted(first))"
        )
        return [step(1, "Call the first API", call), step(1, "Read a field that is not there", "print({}['missing'])")]
    if number == 2:
        go_on = "print('error field:', first.get('error'))"
        return [step(2, "Check the answer", go_on), "##Step 2: I think the data above is enough to answer."]
    final = step(3, "Answer", "print('answer built from', len(first), 'fields')", finished=True)
    return [final, "##Step 3: Answer\nThe answer is in the output above.\n[All Finished]\n[Step 3 Finished]"]
