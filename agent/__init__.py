"""The CodeTool agent: step-wise code generation with execution and process rewards.

```python
async with CodeToolAgent(config) as agent:
    trajectory = await agent.solve(query, toolset)
```
"""

from agent.agent import CodeToolAgent, QueryFailed
from agent.config import AgentConfig, GatewayConfig, LLMConfig, RewardModelConfig, SandboxConfig, SearchConfig, load_config
from agent.events import (
    CandidateExecuted,
    CandidatesSampled,
    CandidatesScored,
    Event,
    QueryFinished,
    QueryStarted,
    StepSelected,
)
from agent.latent import LatentScore, LatentScorer, ScoringContext
from agent.llm import LLMClient
from agent.parsing import ParsedStep, parse_step
from agent.policy import PolicyModel, Samples, Usage, create_policy_model, policy_backends, register_policy_model
from agent.search import SearchStrategy, StepJudge, create_search_strategy, register_search_strategy, search_strategies
from agent.selection import Selector, create_selector, register_selector, selection_modes
from agent.trajectory import StepNode, Trajectory

__all__ = [
    "AgentConfig",
    "CandidateExecuted",
    "CandidatesSampled",
    "CandidatesScored",
    "CodeToolAgent",
    "Event",
    "GatewayConfig",
    "LLMClient",
    "LLMConfig",
    "LatentScore",
    "LatentScorer",
    "ParsedStep",
    "PolicyModel",
    "QueryFailed",
    "QueryFinished",
    "QueryStarted",
    "RewardModelConfig",
    "Samples",
    "SandboxConfig",
    "ScoringContext",
    "SearchConfig",
    "SearchStrategy",
    "Selector",
    "StepJudge",
    "StepNode",
    "StepSelected",
    "Trajectory",
    "Usage",
    "create_policy_model",
    "create_search_strategy",
    "create_selector",
    "load_config",
    "parse_step",
    "policy_backends",
    "register_policy_model",
    "register_search_strategy",
    "register_selector",
    "search_strategies",
    "selection_modes",
]
