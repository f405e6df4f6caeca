"""The evaluation's prompts: the final-answer writer and the SoPR judge, each with a version.

A version names the exact wording; change the text, change the version, so that cached answers
and judgements made with other wording are not reused.
"""

from __future__ import annotations

ANSWER_PROMPT_VERSION = "answer-v1"
JUDGE_PROMPT_VERSION = "judge-v1"

ANSWER_SYSTEM = """\
A program was written step by step to answer a user's query by calling web APIs, but it stopped \
before stating a final answer. You are given the query and what its steps printed. Write the final \
answer to the user from those outputs alone: state every fact they establish that the query asks \
for, in plain sentences, without inventing anything. If the outputs leave part of the query \
unanswered, say briefly which part."""

ANSWER_USER = """\
Query:
{query}

What the steps printed:
{outputs}"""

VERDICT_FUNCTION = "give_verdict"
LABELS = ("Solved", "Unsure", "Unsolved")

JUDGE_SYSTEM = """\
You grade answers given by an assistant that used tools to serve a user's query. Decide whether \
the answer solves the query:
- Solved: the answer addresses every request in the query with specific, plausible content.
- Unsure: the answer addresses the query only in part, or its content is too vague to tell.
- Unsolved: the answer is missing, refuses, reports an error or says the information could not be \
found, or does not address the query.
Judge only what the answer says. Record your decision by calling {function}."""

JUDGE_USER = """\
Query:
{query}

Answer:
{answer}"""

VERDICT_TOOL = {
    "type": "function",
    "function": {
        "name": VERDICT_FUNCTION,
        "description": "Record whether the answer solves the query.",
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "One or two sentences on why."},
                "label": {"type": "string", "enum": list(LABELS)},
            },
            "required": ["reason", "label"],
        },
    },
}
