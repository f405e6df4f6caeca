"""SoPR (solvable pass rate): the judge's labels scored 1 / 0.5 / 0, averaged per group, over rounds.

A query without an answer (failed, never run, or nothing useful printed) is Unsolved and stays in
the denominator. Rounds are independent judgements; the result is their mean and (population)
standard deviation, in percent.

Protocols: `codetool` (ours: the policy's answer where it printed one, our judge prompt, saved as
`eval/sopr.json`) and `reference` (the reference release's: an LLM writes every answer from the
steps' useful output, the judge answers `check_answer_status` at temperature 0, with StableToolBench's
text when its checkout is given; saved as `eval/sopr_reference.json`).
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from codetool_kernel.errors import ConfigError
from evaluation.answers import CODETOOL_ANSWERS, REFERENCE_ANSWERS, AnswerWriter, FinalAnswer
from evaluation.endpoint import EvalEndpoint
from evaluation.judge import CACHE_FILE, CODETOOL_JUDGE, LABEL_SCORES, Judge, JudgeCache, JudgePrompt, Verdict
from evaluation.prompts import LABELS
from evaluation.reference_protocol import reference_judge
from evaluation.rundata import RunData, load_run
from evaluation.tables import MetricTable, percent, save_metric

SOPR_FILE = "sopr"
REFERENCE_SOPR_FILE = "sopr_reference"
SoprProtocol = Literal["codetool", "reference"]


@dataclass(frozen=True)
class SoprOptions:
    judge_model: str
    rounds: int = 3
    answer_model: str | None = None
    """Writes answers the policy did not give (default: the judge model)."""
    temperature: float | None = None
    protocol: SoprProtocol = "codetool"
    stabletoolbench_dir: Path | None = None
    """A StableToolBench checkout whose judge text the reference protocol uses (ours when None)."""

    def judge_prompt(self) -> JudgePrompt:
        if self.protocol == "codetool":
            if self.stabletoolbench_dir is not None:
                raise ConfigError("--stabletoolbench-dir goes with --protocol reference")
            return CODETOOL_JUDGE
        if self.temperature not in (None, 0.0):
            raise ConfigError("the reference protocol judges at temperature 0: leave out --temperature")
        return reference_judge(self.stabletoolbench_dir)

    def judge_temperature(self) -> float | None:
        return 0.0 if self.protocol == "reference" else self.temperature


def mean_and_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def score_rounds(labels: list[list[str]], rounds: int) -> list[float]:
    """SoPR in percent of each round, for the per-query `labels` (one per round)."""
    if not labels:
        return [0.0] * rounds
    return [100 * statistics.fmean(LABEL_SCORES[per_query[r]] for per_query in labels) for r in range(rounds)]


def aggregate(run: RunData, labels: dict[str, list[str]], rounds: int) -> dict[str, Any]:
    """Per-group and average SoPR from each query's labels."""
    groups: dict[str, Any] = {}
    for group, results in run.by_group().items():
        per_query = [labels[result.query_id] for result in results]
        round_sopr = score_rounds(per_query, rounds)
        mean, std = mean_and_std(round_sopr)
        counts = Counter(label for query_labels in per_query for label in query_labels)
        groups[group] = {
            "queries": len(results),
            "round_sopr": round_sopr,
            "sopr": mean,
            "std": std,
            "labels": {label: counts.get(label, 0) for label in LABELS},
        }
    average_rounds = [statistics.fmean(g["round_sopr"][r] for g in groups.values()) for r in range(rounds)]
    mean, std = mean_and_std(average_rounds)
    return {"groups": groups, "average": {"round_sopr": average_rounds, "sopr": mean, "std": std}}


async def judge_run(
    run: RunData, judge: Judge, answers: dict[str, FinalAnswer], rounds: int
) -> dict[str, list[Verdict]]:
    """Every query's verdict in every round (cached ones reused)."""

    async def judge_query(query_id: str, query: str) -> tuple[str, list[Verdict]]:
        answer = answers[query_id].answer if query_id in answers else None
        verdicts = await asyncio.gather(*(judge.verdict(query_id, query, answer, r) for r in range(rounds)))
        return query_id, list(verdicts)

    pairs = await asyncio.gather(
        *(judge_query(r.query_id, r.trajectory.query if r.trajectory else "") for r in run.results)
    )
    return dict(pairs)


def sopr_table(run: RunData, result: dict[str, Any]) -> MetricTable:
    rounds = result["rounds"]
    prompt = result["judge_prompt"]
    text = "ours" if prompt["source"] == "codetool" else f"StableToolBench's ({prompt['source']})"
    table = MetricTable(
        f"SoPR (%) of {run.root.name} · {result['protocol']} protocol · judge {result['judge_model']}"
        f" · judge text {text} · {rounds} round(s)",
        ["group", "queries", "SoPR", "std", *LABELS],
    )
    for group, row in result["groups"].items():
        table.add(group, row["queries"], percent(row["sopr"]), percent(row["std"]), *row["labels"].values())
    average = result["average"]
    table.add("average", len(run.results), percent(average["sopr"]), percent(average["std"]), *([""] * len(LABELS)))
    return table


async def evaluate_sopr(
    run_dir: Path, endpoint: EvalEndpoint, options: SoprOptions
) -> tuple[dict[str, Any], MetricTable]:
    """Write missing final answers, judge every answer in every round, save `eval/sopr.json` and `.csv`."""
    prompt = options.judge_prompt()
    style = REFERENCE_ANSWERS if options.protocol == "reference" else CODETOOL_ANSWERS
    run = await asyncio.to_thread(load_run, run_dir)
    cache = JudgeCache(run.eval_dir / CACHE_FILE)
    writer_model = options.answer_model or options.judge_model
    try:
        async with endpoint.client(writer_model) as writer_llm, endpoint.client(options.judge_model) as judge_llm:
            answers = await AnswerWriter(writer_llm, style).answers_for(run)
            judge = Judge(judge_llm, cache, temperature=options.judge_temperature(), prompt=prompt)
            verdicts = await judge_run(run, judge, answers, options.rounds)
    finally:
        cache.close()
    labels = {query_id: [v.label for v in query_verdicts] for query_id, query_verdicts in verdicts.items()}
    result: dict[str, Any] = {
        "metric": "sopr",
        "run": str(run.root),
        "model": run.model,
        "protocol": options.protocol,
        "judge_model": options.judge_model,
        "judge_temperature": options.judge_temperature(),
        "prompt_version": prompt.version,
        "judge_prompt": {"source": prompt.source, "version": prompt.version, "function": prompt.function},
        "answer_writer": {"model": writer_model, "style": style.name, "prompt_version": style.prompt_version},
        "rounds": options.rounds,
        "judge_requests": judge.requests,
        **aggregate(run, labels, options.rounds),
        "queries": {
            r.query_id: {
                "group": r.group,
                "answer": answers[r.query_id].answer if r.query_id in answers else None,
                "answer_method": answers[r.query_id].method if r.query_id in answers else "missing",
                "labels": labels[r.query_id],
                "reasons": [v.reason for v in verdicts[r.query_id]],
            }
            for r in run.results
        },
    }
    table = sopr_table(run, result)
    save_metric(run.eval_dir, REFERENCE_SOPR_FILE if options.protocol == "reference" else SOPR_FILE, result, table)
    return result, table
