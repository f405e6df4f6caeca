"""The self-contained HTML report of a run."""

from evaluation.report.build import REPORT_FILE, render_report, search_tree, write_report
from evaluation.report.charts import bar_chart

__all__ = ["REPORT_FILE", "bar_chart", "render_report", "search_tree", "write_report"]
