from __future__ import annotations

import pytest

from codetool_kernel.errors import ConfigError
from codetool_kernel.text import TRUNCATION_MARK
from rm import PriorStep, build_prm_messages


def test_first_step_has_instructions_docs_query_and_the_candidate_as_user() -> None:
    messages = build_prm_messages(api_docs="GET /weather?city=", query="Weather in Oslo?", previous=[], candidate="CODE")
    assert [m["role"] for m in messages] == ["system", "user"]
    system = messages[0]["content"]
    assert '"yes"' in system and '"no"' in system
    assert "GET /weather?city=" in system and "Weather in Oslo?" in system
    assert "Previous steps" not in system
    assert messages[1]["content"] == "CODE"


def test_previous_steps_are_numbered_and_their_output_truncated() -> None:
    previous = [PriorStep("##Step 1: search", "A" * 50), PriorStep("##Step 2: details", "short output")]
    messages = build_prm_messages(api_docs="docs", query="q", previous=previous, candidate="c", output_chars=20)
    system = messages[0]["content"]
    history = system[system.index("## Previous steps") :]
    assert history.index("### Step 1") < history.index("##Step 1: search") < history.index("### Step 2")
    assert "A" * 6 + TRUNCATION_MARK in history and "A" * 21 not in history
    assert "short output" in history


def test_the_same_inputs_give_the_same_prompt() -> None:
    kwargs = dict(api_docs="d", query="q", previous=[PriorStep("s", "o")], candidate="c")
    assert build_prm_messages(**kwargs) == build_prm_messages(**kwargs)


def test_answer_words_are_configurable() -> None:
    messages = build_prm_messages(api_docs="d", query="q", previous=[], candidate="c", answer_words=("good", "bad"))
    assert '"good"' in messages[0]["content"] and '"bad"' in messages[0]["content"]
    assert '"yes"' not in messages[0]["content"]


@pytest.mark.parametrize("words", [("yes", "yes"), ("yes", " "), ("yes",)])
def test_bad_answer_words_are_refused(words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="answer_words"):
        build_prm_messages(api_docs="d", query="q", previous=[], candidate="c", answer_words=words)  # type: ignore[arg-type]
