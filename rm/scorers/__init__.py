"""PRM scoring backends behind one `Scorer` interface, registered by name: `hf`, `openai`, `vllm`.

Importing this package registers all three; their heavy dependencies load only in `start()`.
"""

from rm.scorers.base import Scorer, create_scorer, register_scorer, scorer_names
from rm.scorers.batching import MicroBatcher
from rm.scorers.hf import HuggingFaceScorer
from rm.scorers.openai_endpoint import OpenAIEndpointScorer
from rm.scorers.vllm_engine import VllmEngineScorer

__all__ = [
    "HuggingFaceScorer",
    "MicroBatcher",
    "OpenAIEndpointScorer",
    "Scorer",
    "VllmEngineScorer",
    "create_scorer",
    "register_scorer",
    "scorer_names",
]
