"""The evaluation's pieces on their own: error-like output, paths through replays, rounds, the judge."""

from __future__ import annotations

import pytest

from agent.trajectory import StepNode, Trajectory
from codetool_kernel.errors import EndpointError
from codetool_kernel.nodepaths import STATUS_ERROR, STATUS_OK
from codetool_kernel.protocol import ApiCall
from evaluation import Judge, JudgeCache, follows_gold, looks_like_error, score_rounds, useful_outputs
from evaluation.endpoint import EvalEndpoint
from evaluation.judge import cache_key
from evaluation.tmdb_path import called_apis
from tests.support.openai_stub import OpenAIStub, Reply, ToolCall


@pytest.mark.parametrize(
    "output",
    [
        "Traceback (most recent call last):\n  ...",
        "KeyError: 'results'",
        "{'error': 'Rate limit exceeded', 'response': ''}",
        '{"status_code": 404, "status_message": "gone"}',
        "The resource you requested could not be found. Not Found",
        "Function executing from my_tools.Data.theclique failed",
    ],
)
def test_error_like_outputs(output):
    assert looks_like_error(output)


@pytest.mark.parametrize(
    "output",
    ["{'error': '', 'response': {'players': ['Messi']}}", "Sofia Coppola directed 6 movies.", "errors: 0 of 12 checks"],
)
def test_useful_outputs(output):
    assert not looks_like_error(output)


def call(name: str) -> ApiCall:
    return ApiCall(method="GET", url=f"https://x/{name}", api_name=name, status=200)


def node(path: str, status: int, calls: list[str], *, code: str = "print(1)") -> StepNode:
    depth = path.count("-") + 1
    parent = path.rsplit("-", 1)[0] if depth > 1 else None
    return StepNode(
        path=path, depth=depth, index=1, parent=parent, completion="", content="", code=code, status=status,
        stdout="data", api_calls=[call(name) for name in calls], chosen=True,
    )  # fmt: skip


def trajectory(*nodes: StepNode) -> Trajectory:
    return Trajectory(q_id="x", query="q", instruction="", nodes=list(nodes), chosen_path=[n.path for n in nodes])


def test_called_apis_count_each_call_once_through_replays():
    # step 2 replays step 1 (A); step 2 raised after calling B, so step 3 replays only A again
    steps = trajectory(
        node("1-1", STATUS_OK, ["A"]),
        node("1-1-1", STATUS_ERROR, ["A", "B"]),
        node("1-1-1-1", STATUS_OK, ["A", "C", "D"]),
        node("1-1-1-1-1", STATUS_OK, [], code=""),
    )
    assert called_apis(steps) == ["A", "B", "C", "D"]
    assert [path for path, _ in useful_outputs(steps)] == ["1-1", "1-1-1-1"]


def test_gold_path_is_an_ordered_subsequence():
    assert follows_gold(
        ["GET_search_person", "GET_x", "GET_person_person_id_movie_credits"],
        ["get search person", "GET_person_person_id_movie_credits"],
    )
    assert not follows_gold(
        ["GET_person_person_id_movie_credits", "GET_search_person"],
        ["GET_search_person", "GET_person_person_id_movie_credits"],
    )
    assert not follows_gold(["GET_search_person"], ["GET_search_person", "GET_search_person"])


def test_round_scores():
    labels = [["Solved", "Unsure"], ["Unsolved", "Solved"]]
    assert score_rounds(labels, 2) == [50.0, 75.0]
    assert score_rounds([], 3) == [0.0, 0.0, 0.0]


async def test_judge_caches_by_round_and_refuses_unusable_verdicts(tmp_path):
    replies = {"label": "Solved"}

    def judge_policy(body):
        if replies["label"] is None:
            return ["I think it is solved."]
        return [Reply(content=None, tool_calls=[ToolCall("give_verdict", {"reason": "ok", "label": replies["label"]})])]

    cache = JudgeCache(tmp_path / "cache.sqlite")
    async with (
        OpenAIStub(judge_policy) as stub,
        EvalEndpoint(stub.base_url, "k", max_retries=0).client("judge") as llm,
    ):
        judge = Judge(llm, cache)
        first = await judge.verdict("q1", "query", "answer", 0)
        again = await judge.verdict("q1", "query", "answer", 0)
        other_round = await judge.verdict("q1", "query", "answer", 1)
        missing = await judge.verdict("q2", "query", None, 0)
        assert (first.label, first.cached, again.cached, other_round.cached) == ("Solved", False, True, False)
        assert missing.label == "Unsolved" and len(stub.requests) == 2
        request = stub.requests[0]
        assert request["tool_choice"] == {"type": "function", "function": {"name": "give_verdict"}}
        replies["label"] = None
        with pytest.raises(
            EndpointError, match="no usable verdict for query q3 in 3 tries: it did not call give_verdict"
        ):
            await judge.verdict("q3", "query", "answer", 0)
        replies["label"] = "Maybe"
        with pytest.raises(EndpointError, match="'Maybe' is not one of Solved, Unsure, Unsolved"):
            await judge.verdict("q3", "query", "answer", 0)
    cache.close()
    reopened = JudgeCache(tmp_path / "cache.sqlite")
    assert reopened.get(cache_key("q1", "answer", "judge", "judge-v1", 1)).label == "Solved"
    reopened.close()
