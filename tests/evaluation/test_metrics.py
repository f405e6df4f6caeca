"""SoPR, SCEP, TMDB paths and compare on the scripted runs, against values worked out by hand.

StableToolBench (10 queries): judged Solved 588, 608, 1572 (written answer), 2354 (written
answer); Unsure 1073, 2399; Unsolved 2121; 1856 has no answer and 2213 failed (both Unsolved,
never judged); 2144 is Solved in one round and Unsure in the other two. Round SoPRs are
therefore 60, 55, 55: mean 56.67, population std 2.36.
TMDB (5 queries): Solved q0, q1, q4 (written answer); Unsure q2; Unsolved q3: 70 in every round.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runner.scenario import JUDGE, Sessions, finish, python_module

ROUNDS = 3


@dataclass
class Judged:
    stb: dict
    tmdb: dict
    first_requests: int
    second: tuple[int, str, str]
    second_requests: int


def evaluation(*args: str) -> tuple[int, str, str]:
    return finish(python_module("evaluation", *args), timeout=120)


def sopr(run: Path, base_url: str) -> tuple[int, str, str]:
    return evaluation("sopr", str(run), "--judge-model", JUDGE, "--rounds", str(ROUNDS), "--base-url", base_url)


@pytest.fixture(scope="module")
def judged(scripted_runs: Sessions) -> Judged:
    stub = scripted_runs.stub
    before = len(stub.requests)
    for run in (scripted_runs.stb, scripted_runs.tmdb):
        code, _, stderr = sopr(run, stub.base_url)
        assert code == 0, stderr
    first = len(stub.requests) - before
    again = sopr(scripted_runs.stb, stub.base_url)
    second = len(stub.requests) - before - first
    read = lambda run: json.loads((run / "eval" / "sopr.json").read_text())  # noqa: E731
    return Judged(read(scripted_runs.stb), read(scripted_runs.tmdb), first, again, second)


def test_sopr_per_group_mean_and_std(judged: Judged):
    group = judged.stb["groups"]["G1_instruction"]
    assert sorted(group["round_sopr"]) == pytest.approx([55.0, 55.0, 60.0])
    assert group["sopr"] == pytest.approx(170 / 3)
    assert group["std"] == pytest.approx(statistics.pstdev([60, 55, 55]))
    assert group["labels"] == {"Solved": 4 * 3 + 1, "Unsure": 2 * 3 + 2, "Unsolved": 3 * 3}
    tmdb = judged.tmdb["groups"]["tmdb"]
    assert tmdb["round_sopr"] == pytest.approx([70.0] * 3) and tmdb["std"] == 0.0


def test_missing_answers_are_unsolved_and_stay_in_the_denominator(judged: Judged, scripted_runs: Sessions):
    queries = judged.stb["queries"]
    assert len(queries) == 10
    assert queries["2213"]["answer_method"] == "missing" and queries["2213"]["labels"] == ["Unsolved"] * 3
    assert queries["1856"]["answer_method"] == "none" and queries["1856"]["labels"] == ["Unsolved"] * 3
    assert {"2213", "1856"}.isdisjoint(scripted_runs.server.judged)


def test_judge_model_prompt_version_and_answers_are_recorded(judged: Judged, scripted_runs: Sessions):
    assert judged.stb["judge_model"] == JUDGE and judged.stb["prompt_version"] == "judge-v1"
    assert judged.stb["rounds"] == ROUNDS and judged.stb["answer_writer"]["model"] == JUDGE
    answers = json.loads((scripted_runs.stb / "eval" / "answers.json").read_text())["answers"]
    methods = {query_id: entry["method"] for query_id, entry in answers.items()}
    assert methods == {
        "588": "policy", "608": "policy", "1073": "policy", "1572": "llm", "1856": "none",
        "2121": "policy", "2144": "policy", "2354": "llm", "2399": "policy",
    }  # fmt: skip
    assert answers["1572"]["answer"] == "Written answer for 1572." and answers["1572"]["sources"] == [
        "1-1",
        "1-1-1",
        "1-1-1-1",
    ]
    assert answers["2121"]["answer"] == "I could not find the world ranking of the players."


def test_the_writer_sees_useful_output_only(scripted_runs: Sessions, judged: Judged):
    prompt = scripted_runs.server.writer_prompts["2354"]
    assert "teams page 2: Arsenal, Chelsea" in prompt and "teams page 3" in prompt
    assert "Rate limit" not in prompt
    assert "media source 1: credibility 91" in scripted_runs.server.writer_prompts["1572"]


def test_a_second_sopr_costs_nothing(judged: Judged):
    code, stdout, stderr = judged.second
    assert code == 0, stderr
    assert judged.second_requests == 0 and judged.first_requests > 0
    assert "56.67" in stdout and "average" in stdout


def test_sopr_csv_matches_json(judged: Judged, scripted_runs: Sessions):
    rows = list(csv.DictReader((scripted_runs.stb / "eval" / "sopr.csv").open()))
    assert rows[0]["group"] == "G1_instruction" and rows[0]["SoPR"] == "56.67" and rows[0]["Unsolved"] == "9"


def test_scep_counts_the_chosen_steps_that_ran(scripted_runs: Sessions):
    code, stdout, stderr = evaluation("scep", str(scripted_runs.stb))
    assert code == 0, stderr
    result = json.loads((scripted_runs.stb / "eval" / "scep.json").read_text())
    group = result["groups"]["G1_instruction"]
    # chosen steps with code: 588 3/3, 608 1/1, 1073 2/2, 1572 3/3, 1856 0/3, 2144 1/1, 2354 3/3, 2399 1/1
    assert (group["steps"], group["succeeded"]) == (17, 14) and group["scep"] == pytest.approx(100 * 14 / 17)
    assert (group["candidates"], group["candidates_succeeded"]) == (34, 27)
    assert "82.35" in stdout
    code, _, stderr = evaluation("scep", str(scripted_runs.tmdb))
    assert code == 0, stderr
    tmdb = json.loads((scripted_runs.tmdb / "eval" / "scep.json").read_text())["groups"]["tmdb"]
    assert (tmdb["steps"], tmdb["succeeded"]) == (12, 12)


def test_tmdb_path_rate_and_success_rate(scripted_runs: Sessions, judged: Judged):
    code, stdout, stderr = evaluation("tmdb-path", str(scripted_runs.tmdb))
    assert code == 0, stderr
    result = json.loads((scripted_runs.tmdb / "eval" / "tmdb_path.json").read_text())
    correct = {query_id: row["correct_path"] for query_id, row in result["queries"].items()}
    assert correct == {"q0": True, "q1": True, "q2": False, "q3": False, "q4": True}
    assert result["queries"]["q2"]["called"] == ["GET_movie_top_rated"] and result["queries"]["q3"]["called"] == []
    assert result["queries"]["q4"]["called"] == [
        "GET_search_company",
        "GET_company_company_id_images",
        "GET_company_company_id_images",
    ]
    assert result["path_rate"] == pytest.approx(60.0) and result["success_rate"] == pytest.approx(60.0)
    assert result["judge_model"] == JUDGE and "60.00" in stdout


def test_compare_puts_runs_side_by_side(scripted_runs: Sessions, judged: Judged, tmp_path):
    code, stdout, stderr = evaluation(
        "compare", str(scripted_runs.stb), str(scripted_runs.tmdb), "--out", str(tmp_path)
    )
    assert code == 0, stderr
    result = json.loads((tmp_path / f"compare_{scripted_runs.tmdb.name}.json").read_text())
    rows = {(row["group"], row["figure"]): row for row in result["rows"]}
    assert (
        rows[("G1_instruction", "SoPR")]["a"] == pytest.approx(170 / 3)
        and rows[("G1_instruction", "SoPR")]["b"] is None
    )
    assert rows[("tmdb", "SoPR")]["b"] == pytest.approx(70.0) and rows[("tmdb", "path rate")]["b"] == pytest.approx(
        60.0
    )
    assert rows[("G1_instruction", "finished %")]["a"] == pytest.approx(90.0)
    assert (tmp_path / f"compare_{scripted_runs.tmdb.name}.csv").read_text().startswith("group,figure,A,B,B - A")


def test_sopr_without_an_endpoint_is_one_line(scripted_runs: Sessions):
    code, _, stderr = finish(
        python_module(
            "evaluation", "sopr", str(scripted_runs.tmdb), "--judge-model", JUDGE, env={"OPENAI_BASE_URL": ""}
        )
    )
    assert code == 2 and stderr.strip().splitlines() == [
        "error: no judge endpoint: give --base-url or set OPENAI_BASE_URL"
    ]


def test_not_a_run_directory_is_one_line(tmp_path):
    code, _, stderr = evaluation("scep", str(tmp_path))
    assert code == 2 and "no run.json" in stderr and len(stderr.strip().splitlines()) == 1


def test_answers_command_writes_only_the_missing_answers(scripted_runs: Sessions, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(scripted_runs.tmdb, run, ignore=shutil.ignore_patterns("eval"))
    before = len(scripted_runs.stub.requests)
    code, stdout, stderr = evaluation(
        "answers", str(run), "--model", "writer-model", "--base-url", scripted_runs.stub.base_url
    )
    assert code == 0, stderr
    answers = json.loads((run / "eval" / "answers.json").read_text())["answers"]
    assert {query_id: entry["method"] for query_id, entry in answers.items()} == {
        "q0": "policy", "q1": "policy", "q2": "policy", "q3": "policy", "q4": "llm",
    }  # fmt: skip
    assert answers["q4"]["writer"] == "writer-model" and answers["q4"]["prompt_version"] == "answer-v1"
    assert len(scripted_runs.stub.requests) - before == 1
    assert re.search(r"llm\s*│\s*1", stdout)
