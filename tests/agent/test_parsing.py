"""Step parsing: every malformed shape DESIGN.md lists, and the well-formed one."""

from agent.parsing import parse_step

WELL_FORMED = """##Step 1: Find the person id
```python
import requests
r = requests.get("https://api.example/search", params={"q": "x"})
print(r.json()["id"])
```
"""


def test_well_formed_step():
    step = parse_step(WELL_FORMED)
    assert step.title == "Find the person id"
    assert step.code.startswith("import requests\n") and step.code.rstrip().endswith('print(r.json()["id"])')
    assert not step.finished and step.notes == ()


def test_missing_fence_keeps_code_that_parses():
    step = parse_step("##Step 2: Print it\nx = 41 + 1\nprint(x)\n[All Finished]")
    assert step.code == "x = 41 + 1\nprint(x)\n"
    assert step.finished
    assert "code without a fence" in step.notes


def test_missing_fence_prose_is_not_code():
    step = parse_step("##Step 2: I think the answer is that the movie was released in 1999.")
    assert step.code == "" and "no code" in step.notes


def test_unclosed_fence_takes_rest():
    step = parse_step("##Step 1: a\n```python\nx = 1\nprint(x)\n")
    assert step.code == "x = 1\nprint(x)\n"
    assert "unclosed code block" in step.notes


def test_several_fences_are_joined_in_order():
    step = parse_step("##Step 1: a\n```python\nx = 1\n```\nthen\n```python\nprint(x)\n```\n")
    assert step.code == "x = 1\nprint(x)\n"
    assert "several code blocks joined" in step.notes


def test_non_python_fence_is_ignored():
    step = parse_step('##Step 1: a\n```json\n{"a": 1}\n```\n```python\nprint(1)\n```')
    assert step.code == "print(1)\n"


def test_text_after_marker_dropped():
    step = parse_step("##Step 1: a\n```python\nprint(1)\n```\n[Step 1 Finished]\n##Step 2: b\n```python\nprint(2)\n```")
    assert step.code == "print(1)\n"
    assert "text after the step marker dropped" in step.notes


def test_several_steps_keep_the_first():
    step = parse_step("##Step 1: a\n```python\nx = 1\n```\n##Step 2: b\n```python\nprint(x)\n```\n[All Finished]")
    assert step.code == "x = 1\n" and step.title == "a"
    assert not step.finished, "the marker belongs to the dropped second step"
    assert "several steps; kept the first" in step.notes


def test_step_header_inside_code_is_not_a_new_step():
    step = parse_step('##Step 1: a\n```python\n# ##Step 2: not a header\nprint("x")\n```\n')
    assert "several steps; kept the first" not in step.notes
    assert 'print("x")' in step.code


def test_empty_completion():
    for text in ("", "   \n", None):
        step = parse_step(text)
        assert not step.has_code and not step.finished and step.notes == ("empty completion",)


def test_text_answer_without_code():
    step = parse_step("##Step 3: Answer\nSofia Coppola directed 8 movies.\n[All Finished]\n")
    assert not step.has_code and step.finished
    assert step.answer_text == "Sofia Coppola directed 8 movies."


def test_header_variants():
    for header in ("## Step 1: x", "##step 1 - x", "### Step 1. x", "##Step1: x"):
        assert parse_step(f"{header}\n```python\nprint(1)\n```").title == "x", header
