"""The policy model: the `PolicyModel` seam, its registered backends and how `--model` picks one.

Backends: `openai` (an OpenAI-compatible endpoint, `agent.llm.LLMClient`), `hf` (transformers in this
process), `vllm` (a vLLM engine in this process, GPU). `--model hf:PATH` picks by prefix; a model without
one goes to the endpoint when one is configured, else runs in this process.
"""

from agent.policy.base import Message, PolicyModel, Samples, Usage, policy_backends, register_policy_model
from agent.policy.choice import (
    NO_MODEL_HINT,
    PolicyChoice,
    choose_policy,
    create_policy_model,
    open_policy_model,
    policy_model_name,
)

__all__ = [
    "NO_MODEL_HINT",
    "Message",
    "PolicyChoice",
    "PolicyModel",
    "Samples",
    "Usage",
    "choose_policy",
    "create_policy_model",
    "open_policy_model",
    "policy_backends",
    "policy_model_name",
    "register_policy_model",
]
