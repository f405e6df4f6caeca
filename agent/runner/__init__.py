"""Benchmark runs: many queries over one shared agent, resumable, on one machine or on Ray.

```python
settings = RunSettings(
    benchmark="tmdb", data=Path("tmdb_queries.json"), spec=Path("tmdb_spec.json"), out=Path("runs/a")
)
result = run_benchmark(settings, load_config())
```
"""

from agent.runner.balancing import BalancedLLMClient
from agent.runner.driver import RunInterrupted, RunPlan, RunResult, plan_run, run_benchmark
from agent.runner.engine import ShardOutcome, run_shard
from agent.runner.layout import RunLayout, audit_path, load_trajectory
from agent.runner.queries import select_queries
from agent.runner.settings import Price, RunSettings, load_prices
from agent.runner.stats import RunStats, percentile

__all__ = [
    "BalancedLLMClient",
    "Price",
    "RunInterrupted",
    "RunLayout",
    "RunPlan",
    "RunResult",
    "RunSettings",
    "RunStats",
    "ShardOutcome",
    "audit_path",
    "load_prices",
    "load_trajectory",
    "percentile",
    "plan_run",
    "run_benchmark",
    "run_shard",
    "select_queries",
]
