"""End to end: the agent solves benchmark queries through a real sandbox, gateway and virtual APIs."""

from __future__ import annotations

import json

import pytest

from agent import CodeToolAgent, QueryFailed
from agent.events import CandidateExecuted, CandidatesSampled, QueryFinished, QueryStarted, StepSelected
from codetool_kernel.nodepaths import STATUS_ERROR, STATUS_OK
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import by_step, coppola_policy, messi_policy, step, step_of


async def test_stabletoolbench_query_in_three_steps(stb_provider, stb_g1_file, config_for):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    async with OpenAIStub(messi_policy) as stub:
        trajectory = await CodeToolAgent(config_for(stub.base_url)).solve(query, toolset)

    assert trajectory.stop_reason == "finished" and trajectory.finished
    assert trajectory.chosen_path == ["1-1", "1-1-1", "1-1-1-1"]
    chosen = trajectory.chosen_nodes()
    assert all(node.status == STATUS_OK and node.r_spot == 1.0 for node in chosen), [n.error for n in chosen]
    assert chosen[0].stdout.startswith("players: [")
    assert "details of" in chosen[1].stdout, "step 2 used `players` defined by the replayed step 1"
    assert trajectory.final_answer and trajectory.final_answer.startswith("Messi:")
    # Step 2's executions replayed step 1: its search call was served from the memo, and the two
    # identical candidates reached the details API upstream once between them.
    step2 = [trajectory.node("1-1-1"), trajectory.node("1-1-2")]
    for node in step2:
        assert [call.api_name for call in node.api_calls] == ["TheClique/Transfermarkt search", "TheClique/Transfermarkt details"]
        assert node.api_calls[0].memo_hit
    assert sorted(node.api_calls[1].memo_hit for node in step2) == [False, True]
    # 3 steps x n=2 candidates, each sampled once per step.
    assert len(trajectory.nodes) == 6 and len(stub.requests) == 3
    assert trajectory.usage["requests"] == 3 and trajectory.usage["completion_tokens"] > 0


async def test_tmdb_query_against_virtual_tmdb(tmdb_provider, tmdb_queries, config_for):
    query = tmdb_provider.load_queries(str(tmdb_queries), ids=["q0"])[0]
    toolset = tmdb_provider.toolset_for(query)
    async with OpenAIStub(coppola_policy) as stub:
        trajectory = await CodeToolAgent(config_for(stub.base_url, n=1)).solve(query, toolset)

    assert trajectory.stop_reason == "finished", [node.error for node in trajectory.nodes]
    assert trajectory.final_answer is not None and trajectory.final_answer.startswith("Sofia Coppola directed")
    called = [call.api_name for node in trajectory.chosen_nodes() for call in node.api_calls if not call.memo_hit]
    assert called == ["GET_search_person", "GET_person_person_id_movie_credits"]
    system_prompt = stub.requests[0]["messages"][0]["content"]
    assert "GET_search_person" in system_prompt and "headers" in system_prompt


async def test_secrets_stay_on_the_host(tmdb_provider, tmdb_queries, config_for):
    query = tmdb_provider.load_queries(str(tmdb_queries), ids=["q0"])[0]
    toolset = tmdb_provider.toolset_for(query)
    code = (
        "import requests\n"
        "print(headers)\n"
        "r = requests.get('https://api.themoviedb.org/3/search/person', headers=headers, params={'query': 'Sofia Coppola'})\n"
        "print(r.status_code, r.text[:80])"
    )
    async with OpenAIStub(by_step([[step(1, "Show what the sandbox holds", code, finished=True)]])) as stub:
        trajectory = await CodeToolAgent(config_for(stub.base_url, n=1)).solve(query, toolset)

    node = trajectory.node("1-1")
    assert node.status == STATUS_OK, node.error
    assert "Bearer MASKED_TMDB_TOKEN" in node.stdout and "200" in node.stdout
    dumped = json.dumps(trajectory.to_json()) + json.dumps(stub.requests)
    for secret in toolset.secrets.values():
        assert secret not in dumped


async def test_failing_candidate_gets_zero_and_the_other_wins(stb_provider, stb_g1_file, config_for):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    failing = step(1, "Broken lookup", "data = {'a': 1}\nprint(data['missing'])")
    working = step(1, "Answer directly", "print('Lionel Messi played for Barcelona')", finished=True)
    async with OpenAIStub(by_step([[failing, working]])) as stub:
        trajectory = await CodeToolAgent(config_for(stub.base_url)).solve(query, toolset)

    first, second = trajectory.node("1-1"), trajectory.node("1-2")
    assert (first.r_spot, first.status, first.chosen) == (0.0, STATUS_ERROR, False)
    assert first.error == "KeyError: 'missing'"
    assert (second.r_spot, second.status, second.chosen) == (1.0, STATUS_OK, True)
    assert trajectory.chosen_path == ["1-2"] and trajectory.final_answer == "Lionel Messi played for Barcelona"
    layout = trajectory.to_json()
    assert layout["exec_res"]["1-2"] == {
        "code": second.code.rstrip("\n"), "res": "Lionel Messi played for Barcelona\n", "status": 0, "step_code": second.code
    }  # fmt: skip


async def test_ties_go_to_the_first_candidate(stb_provider, stb_g1_file, config_for):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    a = step(1, "A", "print('a')", finished=True)
    b = step(1, "B", "print('b')", finished=True)
    async with OpenAIStub(by_step([[a, b]])) as stub:
        trajectory = await CodeToolAgent(config_for(stub.base_url)).solve(query, toolset)
    assert trajectory.chosen_path == ["1-1"] and trajectory.final_answer == "a"


async def test_malformed_completions_are_survived(stb_provider, stb_g1_file, config_for):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    two_steps_at_once = (
        "##Step 1: set\n```python\nx = 20\nprint('x set')\n```\n"
        "##Step 2: use\n```python\nprint(x * 2)\n```\n[All Finished]"
    )
    unclosed_final = "##Step 2: double it\n```python\nprint(x + x)\n[All Finished]\n"
    async with OpenAIStub(by_step([["", two_steps_at_once], ["I do not know.", unclosed_final]])) as stub:
        trajectory = await CodeToolAgent(config_for(stub.base_url)).solve(query, toolset)

    empty, first = trajectory.node("1-1"), trajectory.node("1-2")
    assert empty.r_spot == 0.0 and empty.parse_notes == ["empty completion"] and empty.is_leaf
    assert first.chosen and "several steps; kept the first" in first.parse_notes and not first.finished
    assert "print(x * 2)" not in first.content
    prose, final = trajectory.node("1-2-1"), trajectory.node("1-2-2")
    assert prose.r_spot == 0.0 and prose.code == ""
    assert final.chosen and final.stdout == "40\n" and "unclosed code block" in final.parse_notes
    assert trajectory.final_answer == "40"


async def test_max_depth_stops_without_answer(stb_provider, stb_g1_file, config_for):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    async with OpenAIStub(lambda body: [step(step_of(body), "again", "print('still going')")]) as stub:
        trajectory = await CodeToolAgent(config_for(stub.base_url, n=1, max_depth=3)).solve(query, toolset)
    assert trajectory.stop_reason == "max_depth" and trajectory.final_answer is None
    assert len(trajectory.chosen_path) == 3 and trajectory.chosen_nodes()[-1].is_leaf
    assert [entry["path_name"] for entry in trajectory.to_json()["infer_path"]] == ["1-1", "1-1-1", "1-1-1-1"]


async def test_event_stream_order(stb_provider, stb_g1_file, config_for):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    answer = step(1, "Answer", "print('done')", finished=True)
    async with OpenAIStub(by_step([[answer]])) as stub:
        async with CodeToolAgent(config_for(stub.base_url)) as agent:
            kinds = [type(event).__name__ async for event in agent.stream(query, toolset)]
    assert kinds == [
        QueryStarted.__name__,
        CandidatesSampled.__name__,
        CandidateExecuted.__name__,
        CandidateExecuted.__name__,
        StepSelected.__name__,
        QueryFinished.__name__,
    ]


async def test_unreachable_endpoint_fails_the_query_clearly(stb_provider, stb_g1_file, config_for):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    toolset = stb_provider.toolset_for(query)
    with pytest.raises(QueryFailed, match="OPENAI_BASE_URL") as info:
        await CodeToolAgent(config_for("http://127.0.0.1:9/v1")).solve(query, toolset)
    assert info.value.trajectory.stop_reason == "error" and info.value.trajectory.nodes == []


def test_sync_wrapper(tmdb_spec, config_for):
    import asyncio

    from tools import create_provider
    from tools.toolset import Query

    async def serve_and_solve():
        async with OpenAIStub(by_step([[step(1, "Answer", "print(6 * 7)", finished=True)]])) as stub:
            async with create_provider("tmdb", spec_path=str(tmdb_spec)) as provider:
                toolset = provider.toolset_for(Query(query_id="x", text="what is six times seven"))
                agent = CodeToolAgent(config_for(stub.base_url))
                return await asyncio.to_thread(agent.solve_sync, "what is six times seven", toolset)

    trajectory = asyncio.run(serve_and_solve())
    assert trajectory.final_answer == "42" and trajectory.q_id == "adhoc"
