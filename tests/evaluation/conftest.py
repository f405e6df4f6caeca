"""Evaluation tests measure the scripted benchmark runs of `tests/runner/scenario.py`."""

from tests.runner.scenario import scripted_runs

__all__ = ["scripted_runs"]
