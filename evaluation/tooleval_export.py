"""A run in StableToolBench's answer format, for its own evaluator (`toolbench/tooleval`).

`OUT/{group}/{query_id}_{method}.json` holds `answer_generation` as StableToolBench's solvers write
it: `valid_data`, `query`, `function` (the tools as functions, `Finish` last), `final_answer` (the
arguments of the `Finish` call, as JSON text) and `train_messages`, whose last conversation is
system, user, then per chosen step the step's text and one function call (with its response) per
API it called, and finally the `Finish` call. Its `convert_to_answer_format.py --method {method}`
turns the folder into the file `eval_pass_rate.py` reads, where `answer_details` ends in `Finish`.

The tools are the query's `api_list` when the run's benchmark folder has it, plus any other API the
path called. A query that failed, or whose path gave no answer, is written with a `give_up_and_restart` Finish,
so that it stays in the evaluator's denominator. The response of each call is the output the step
printed, attached to the step's last call (the gateway records calls, not their bodies).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.trajectory import StepNode, Trajectory
from codetool_kernel.errors import DataError
from codetool_kernel.files import read_json, write_json_atomic
from evaluation.answers import ANSWERS_FILE, REFERENCE_ANSWERS_FILE, FinalAnswer, load_answers
from evaluation.rundata import RunData

DEFAULT_METHOD = "CodeTool"
FINISH = "Finish"
RESPONSE_CHARS = 3500

_SYSTEM = (
    "You solve the user's query by writing Python step by step; each step calls the tools listed below over "
    "HTTP and prints what it found. When done, call Finish with the final answer.\nTools: {functions}"
)
_NOT_NAME = re.compile(r"[^a-z0-9]+")


@dataclass
class ExportReport:
    written: dict[str, int] = field(default_factory=dict)
    """Files written per group."""
    gave_up: list[str] = field(default_factory=list)
    """Queries written with a give-up Finish (no trajectory or no final answer)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Queries left out, with why."""


def function_name(api: str) -> str:
    """A tool-call name in ToolBench's style: `{api}_for_{tool}` from `Tool/Api`, lower case, `_` between words."""
    tool, _, name = api.rpartition("/")

    def part(text: str) -> str:
        return _NOT_NAME.sub("_", text.lower()).strip("_") or "api"

    return f"{part(name)}_for_{part(tool)}" if tool else part(name)


def finish_function() -> dict[str, Any]:
    return {
        "name": FINISH,
        "description": "Give the final answer to the user, or give up. Call it at the end of every attempt.",
        "parameters": {
            "type": "object",
            "properties": {
                "return_type": {"type": "string", "enum": ["give_answer", "give_up_and_restart"]},
                "final_answer": {"type": "string", "description": "The answer shown to the user."},
            },
            "required": ["return_type"],
        },
    }


def answer_record(
    query: str, trajectory: Trajectory | None, answer: str | None, api_list: Sequence[Any] = ()
) -> dict[str, Any]:
    """One query's StableToolBench answer file; `api_list` is the benchmark's list of the query's APIs, if known."""
    steps = trajectory.chosen_nodes() if trajectory is not None else []
    functions = _functions(steps, api_list)
    finish_arguments = json.dumps(
        {"return_type": "give_answer", "final_answer": answer} if answer else {"return_type": "give_up_and_restart"},
        ensure_ascii=False,
    )
    conversation: list[dict[str, Any]] = [
        {"role": "system", "content": _SYSTEM.format(functions=json.dumps(functions, ensure_ascii=False))},
        {"role": "user", "content": query},
    ]
    for node in steps:
        conversation.extend(_step_messages(node))
    conversation.append({"role": "assistant", "content": None, "function_call": {"name": FINISH, "arguments": finish_arguments}})
    return {
        "answer_generation": {
            "valid_data": True,
            "query": query,
            "function": functions,
            "final_answer": finish_arguments,
            "query_count": sum(len(node.api_calls) for node in steps),
            "train_messages": [conversation],
            "chain": [],
        }
    }


def export_tooleval(run: RunData, out: Path, method: str = DEFAULT_METHOD) -> ExportReport:
    """Write every query of `run` under `out/{group}/`; answers come from `evaluation sopr`/`answers` when made."""
    if not method or "_" in method or "/" in method:
        raise DataError(f"method {method!r} must be a non-empty name without '_' or '/' (it follows the id in file names)")
    answers = _known_answers(run)
    api_lists = _benchmark_api_lists(run)
    report = ExportReport()
    for result in run.results:
        trajectory = result.trajectory
        query = trajectory.query if trajectory is not None else _failed_query_text(run, result.query_id)
        if query is None:
            report.skipped[result.query_id] = result.problem or "no trajectory"
            continue
        known = answers.get(result.query_id)
        answer = known.answer if known is not None else (trajectory.final_answer if trajectory else None)
        if not answer:
            report.gave_up.append(result.query_id)
        record = answer_record(query, trajectory, answer, api_lists.get(result.query_id, ()))
        write_json_atomic(out / result.group / f"{result.query_id}_{method}.json", record)
        report.written[result.group] = report.written.get(result.group, 0) + 1
    return report


def _functions(steps: list[StepNode], api_list: Sequence[Any]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for api in api_list:
        if isinstance(api, dict) and api.get("tool_name") and api.get("api_name"):
            function = _api_function(api)
            seen[function["name"]] = function
    for node in steps:
        for call in node.api_calls:
            name = function_name(call.api_name or call.url)
            seen.setdefault(name, {"name": name, "description": f"{call.method} {call.url}", "parameters": {"type": "object", "properties": {}}})
    return [*seen.values(), finish_function()]


def _api_function(api: dict[str, Any]) -> dict[str, Any]:
    """A StableToolBench `api_list` entry as a function, named as the calls to it are."""
    required = [p for p in api.get("required_parameters") or [] if isinstance(p, dict) and p.get("name")]
    optional = [p for p in api.get("optional_parameters") or [] if isinstance(p, dict) and p.get("name")]
    properties = {
        p["name"]: {
            "type": str(p.get("type") or "string").lower(),
            "description": str(p.get("description") or ""),
            "example_value": p.get("default"),
        }
        for p in [*required, *optional]
    }
    return {
        "name": function_name(f"{api['tool_name']}/{api['api_name']}"),
        "description": str(api.get("api_description") or ""),
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": [p["name"] for p in required],
            "optional": [p["name"] for p in optional],
        },
    }


def _benchmark_api_lists(run: RunData) -> dict[str, Sequence[Any]]:
    """Each StableToolBench query's `api_list`, read from the benchmark folder the run names (empty if unreadable)."""
    settings = run.manifest.get("settings") or {}
    if run.benchmark != "stabletoolbench" or not isinstance(settings, dict) or not settings.get("data"):
        return {}
    folder = Path(settings["data"]) / ("filter_test_instruction" if settings.get("filtered") else "test_instruction")
    lists: dict[str, Sequence[Any]] = {}
    for group in run.groups():
        try:
            entries = read_json(folder / f"{group}.json")
        except DataError:
            continue
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and "query_id" in entry and isinstance(entry.get("api_list"), list):
                lists[str(entry["query_id"])] = entry["api_list"]
    return lists


def _step_messages(node: StepNode) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": node.content}]
    output = node.output[:RESPONSE_CHARS]
    for position, call in enumerate(node.api_calls, start=1):
        name = function_name(call.api_name or call.url)
        arguments = _call_arguments(call.body, call.params)
        messages.append({"role": "assistant", "content": None, "function_call": {"name": name, "arguments": arguments}})
        response = output if position == len(node.api_calls) else ""
        messages.append({"role": "function", "name": name, "content": response})
    return messages


def _call_arguments(body: Any, params: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("tool_input"), dict):
        return json.dumps(body["tool_input"], ensure_ascii=False)
    return json.dumps(params if params else (body or {}), ensure_ascii=False)


def _known_answers(run: RunData) -> dict[str, FinalAnswer]:
    """The reference protocol's answers when made, else ours, else none."""
    for name in (REFERENCE_ANSWERS_FILE, ANSWERS_FILE):
        answers = load_answers(run.eval_dir / name)
        if answers:
            return answers
    return {}


def _failed_query_text(run: RunData, query_id: str) -> str | None:
    path = run.layout.failure_path(query_id)
    if not path.exists():
        return None
    partial = run.layout.read_failure(query_id).get("partial")
    query = partial.get("query") if isinstance(partial, dict) else None
    return query if isinstance(query, str) and query else None
