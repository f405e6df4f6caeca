"""Evaluation of CodeTool runs: final answers, SoPR, SCEP, TMDB path metrics, comparisons and reports.

python -m agent run ... --out runs/a
python -m evaluation sopr runs/a --judge-model gpt-4o
python -m evaluation scep runs/a
python -m evaluation report runs/a
"""

from evaluation.answers import AnswerWriter, FinalAnswer, looks_like_error, useful_outputs
from evaluation.compare import compare_runs, group_figures
from evaluation.endpoint import EvalEndpoint, resolve_endpoint
from evaluation.judge import LABEL_SCORES, Judge, JudgeCache, Verdict
from evaluation.report import render_report, write_report
from evaluation.rundata import QueryResult, RunData, load_run
from evaluation.scep import scep_of
from evaluation.sopr import SoprOptions, aggregate, evaluate_sopr, score_rounds
from evaluation.tmdb_path import called_apis, follows_gold, tmdb_path_of

__all__ = [
    "LABEL_SCORES",
    "AnswerWriter",
    "EvalEndpoint",
    "FinalAnswer",
    "Judge",
    "JudgeCache",
    "QueryResult",
    "RunData",
    "SoprOptions",
    "Verdict",
    "aggregate",
    "called_apis",
    "compare_runs",
    "evaluate_sopr",
    "follows_gold",
    "group_figures",
    "load_run",
    "looks_like_error",
    "render_report",
    "resolve_endpoint",
    "scep_of",
    "score_rounds",
    "tmdb_path_of",
    "useful_outputs",
    "write_report",
]
