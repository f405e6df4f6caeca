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

# The reference protocol (`evaluation sopr --protocol reference`): every final answer is written from
# the chosen steps' useful API output, and the judge records `answer_status` through a forced call.
# These are our own words; with --stabletoolbench-dir the judge's text is read from that checkout.

REFERENCE_ANSWER_PROMPT_VERSION = "answer-ref-v1"
REFERENCE_JUDGE_PROMPT_VERSION = "judge-ref-v1"

REFERENCE_ANSWER_SYSTEM = """\
You write the reply a user receives after an assistant has queried web APIs for them. You are \
given what each step set out to do and what the API actually returned. Answer the user's question \
from that material only: be direct and complete, keep the specific names, numbers and dates it \
holds, and say plainly which parts of the question the material does not cover."""

REFERENCE_ANSWER_USER = """\
The user's question:
{query}

What the steps did and what the APIs returned:
{outputs}"""

REFERENCE_STEP_OUTPUT = """\
Step {step}: {title}
API output:
{output}"""

REFERENCE_VERDICT_FUNCTION = "check_answer_status"

REFERENCE_JUDGE_USER = """\
Decide the `answer_status` of the answer below for the query:
- "Unsolved" when the answer apologises, gives up, reports an error, or does not respond to the query \
directly and positively;
- "Unsure" when it responds directly but you cannot tell from it whether the query is solved;
- "Solved" when you are confident that it solves the query (or "Unsolved" when you are confident it does not).

Query:
{query}
Answer:
{answer}

Give your reasoning in `reason` and the status in `answer_status`, by calling check_answer_status."""

REFERENCE_VERDICT_TOOL = {
    "type": "function",
    "function": {
        "name": REFERENCE_VERDICT_FUNCTION,
        "description": "Record the status of the answer to the query.",
        "parameters": {
            "type": "object",
            "properties": {
                "answer_status": {"type": "string", "enum": ["Unsure", "Unsolved", "Solved"]},
                "reason": {"type": "string", "description": "Why this status."},
            },
            "required": ["answer_status", "reason"],
        },
    },
}
