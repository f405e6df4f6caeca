"""Runner tests share the scripted benchmark of `tests/runner/scenario.py`."""

from tests.runner.scenario import scripted_runs

__all__ = ["scripted_runs"]
