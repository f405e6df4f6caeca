"""CodeTool: programmatic tool use by LLMs under process supervision.

```python
import codetool

trajectory = codetool.solve("Who directed Titanic?", tools="tmdb", overrides={"llm": {"model": "..."}})
print(trajectory.final_answer)
```

The curated public API sits here; the packages below it (`agent`, `sandbox`, `tools`, `rm`, and the
kernel `codetool_kernel`) hold the rest.
"""

from agent import (
    AgentConfig,
    CodeToolAgent,
    Event,
    LatentScore,
    LatentScorer,
    PolicyModel,
    Samples,
    ScoringContext,
    SearchStrategy,
    Selector,
    Trajectory,
    load_config,
    register_policy_model,
    register_search_strategy,
    register_selector,
)
from agent.runner import RunResult, RunSettings
from agent.runner import run_benchmark as run
from codetool.embed import build_config, solve, solve_async
from codetool.errors import (
    CodeToolError,
    ConfigError,
    DataError,
    EndpointError,
    QueryFailed,
    RewardModelError,
    SandboxError,
    ToolGatewayError,
)
from rm import Scorer, register_scorer
from sandbox import Sandbox, create_sandbox
from sandbox import register_backend as register_sandbox
from tools import (
    Query,
    QuerySource,
    ToolProvider,
    ToolSet,
    create_provider,
    create_query_source,
    function_tool,
    register_provider,
    register_query_source,
)

__version__ = "0.1.0"

__all__ = [
    "AgentConfig",
    "CodeToolAgent",
    "CodeToolError",
    "ConfigError",
    "DataError",
    "EndpointError",
    "Event",
    "LatentScore",
    "LatentScorer",
    "PolicyModel",
    "Query",
    "QueryFailed",
    "QuerySource",
    "RewardModelError",
    "RunResult",
    "RunSettings",
    "Samples",
    "Sandbox",
    "SandboxError",
    "Scorer",
    "ScoringContext",
    "SearchStrategy",
    "Selector",
    "ToolGatewayError",
    "ToolProvider",
    "ToolSet",
    "Trajectory",
    "__version__",
    "build_config",
    "create_provider",
    "create_query_source",
    "create_sandbox",
    "function_tool",
    "load_config",
    "register_policy_model",
    "register_provider",
    "register_query_source",
    "register_sandbox",
    "register_scorer",
    "register_search_strategy",
    "register_selector",
    "run",
    "solve",
    "solve_async",
]
