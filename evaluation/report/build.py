"""`python -m evaluation report RUN_DIR`: one self-contained HTML page about a run.

Summary per group, plots, and every query's search tree (each candidate with its rewards, the
chosen path highlighted, code, output and API calls). CSS, JavaScript and SVG are inline, so the
page opens from disk in any browser without a server.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from agent.runner import percentile
from agent.runner.stats import prm_latencies
from agent.trajectory import StepNode, Trajectory
from codetool_kernel.nodepaths import STATUS_OK
from codetool_kernel.text import truncate
from evaluation.answers import ANSWERS_FILE, load_answers
from evaluation.compare import group_figures, read_sopr
from evaluation.report.charts import bar_chart
from evaluation.rundata import QueryResult, RunData
from evaluation.tables import write_text_atomic
from evaluation.tmdb_path import called_apis, follows_gold

REPORT_FILE = "report.html"
CODE_CHARS = 6000
OUTPUT_CHARS = 3000
STATUS_NAMES = {0: "ok", 1: "error", 2: "tool failure"}


@dataclass
class TreeNode:
    """A candidate and the candidates sampled below it."""

    node: StepNode
    output: str
    code: str
    children: list[TreeNode] = field(default_factory=list)


@dataclass
class QueryView:
    result: QueryResult
    status: str
    answer: str | None = None
    answer_method: str | None = None
    labels: list[str] = field(default_factory=list)
    tree: list[TreeNode] = field(default_factory=list)
    called: list[str] = field(default_factory=list)
    correct_path: bool | None = None
    simulated_calls: int = 0
    """API answers a simulator made up (e.g. the virtual TMDB without a token)."""


def search_tree(trajectory: Trajectory) -> list[TreeNode]:
    """The candidates as a forest under the root, siblings in sampling order."""
    views = {
        node.path: TreeNode(node, truncate(node.output, OUTPUT_CHARS), truncate(node.code, CODE_CHARS))
        for node in trajectory.nodes
    }
    roots: list[TreeNode] = []
    for node in trajectory.nodes:
        parent = views.get(node.parent) if node.parent else None
        (parent.children if parent else roots).append(views[node.path])
    return roots


def _query_view(result: QueryResult, answers: dict[str, Any], sopr: dict[str, Any] | None) -> QueryView:
    trajectory = result.trajectory
    if trajectory is None:
        status = "failed" if (result.problem or "").startswith("failed") else "missing"
        return QueryView(result, status, labels=_labels(sopr, result.query_id))
    answer = answers.get(result.query_id)
    view = QueryView(
        result,
        "answered" if trajectory.final_answer is not None else "unfinished",
        answer=answer.answer if answer else trajectory.final_answer,
        answer_method=answer.method if answer else ("policy" if trajectory.final_answer is not None else None),
        labels=_labels(sopr, result.query_id),
        tree=search_tree(trajectory),
        simulated_calls=trajectory.simulated_api_calls,
    )
    if result.gold_solution:
        view.called = called_apis(trajectory)
        view.correct_path = follows_gold(view.called, result.gold_solution)
    return view


def _labels(sopr: dict[str, Any] | None, query_id: str) -> list[str]:
    return list((sopr or {}).get("queries", {}).get(query_id, {}).get("labels") or [])


def _charts(run: RunData, figures: dict[str, dict[str, float | None]], sopr: dict[str, Any] | None) -> list[Any]:
    trajectories = [t for _, t in run.trajectories()]
    groups = list(figures)
    charts = [
        bar_chart(
            "SoPR per group (%)" if sopr else "SoPR per group (%): not judged yet",
            groups,
            {"SoPR": [figures[g]["SoPR"] for g in groups]},
            max_value=100,
        )
    ]
    steps = Counter(len(t.chosen_path) for t in trajectories)
    depths = range(1, max(steps, default=0) + 1)
    charts.append(
        bar_chart("Steps per query", [str(d) for d in depths], {"queries": [steps.get(d, 0) for d in depths]})
    )
    nodes = [node for t in trajectories for node in t.nodes if node.code]
    by_depth = sorted({node.depth for node in nodes})

    def success(depth: int, chosen_only: bool) -> float | None:
        picked = [n for n in nodes if n.depth == depth and (n.chosen or not chosen_only)]
        return 100 * sum(n.status == STATUS_OK for n in picked) / len(picked) if picked else None

    charts.append(
        bar_chart(
            "Execution success per step depth (%)",
            [str(d) for d in by_depth],
            {"all candidates": [success(d, False) for d in by_depth], "chosen": [success(d, True) for d in by_depth]},
            max_value=100,
        )
    )
    samples = {
        "LLM call": [record.latency_s for t in trajectories for record in t.sampling],
        "execution": [node.exec_s for node in nodes],
        "PRM call": [value for t in trajectories for value in prm_latencies(t)],
    }
    charts.append(
        bar_chart(
            "Latency (s)",
            list(samples),
            {f"p{q}": [percentile(values, q) for values in samples.values()] for q in (50, 90, 99)},
            unit="s",
        )
    )
    return charts


def render_report(run: RunData) -> str:
    """The report page of `run` as HTML text."""
    sopr = read_sopr(run)
    answers = load_answers(run.eval_dir / ANSWERS_FILE)
    figures = group_figures(run)
    views = [_query_view(result, answers, sopr) for result in run.results]
    durations = [t.duration_s for _, t in run.trajectories()]
    environment = Environment(
        loader=PackageLoader("evaluation.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        run=run,
        manifest=run.manifest,
        figures=figures,
        sopr=sopr,
        charts=_charts(run, figures, sopr),
        views=views,
        status_names=STATUS_NAMES,
        mean_duration=statistics.fmean(durations) if durations else None,
    )


def write_report(run: RunData, out: Path | None = None) -> Path:
    """Write the report (default `RUN_DIR/eval/report.html`) and return its path."""
    target = out or run.eval_dir / REPORT_FILE
    write_text_atomic(target, render_report(run))
    return target
