"""The process reward model (PRM): prompt, scoring backends, scoring server and its client.

The PRM judges a candidate step with a yes/no question; its latent reward is the two-way softmax
of the "yes" and "no" next-token logits. Training-data generation and fine-tuning live beside this.
"""

from rm.client import RewardModelClient
from rm.config import BatchingConfig, EndpointConfig, ScorerConfig, ServerConfig
from rm.errors import ScorerOverloadedError, ScoringInputError
from rm.prompt import DEFAULT_ANSWER_WORDS, PriorStep, build_prm_messages, check_answer_words
from rm.scorers import Scorer, create_scorer, register_scorer, scorer_names
from rm.scores import MISSING_LOGPROB, Conversation, ScoreResult, two_way_softmax
from rm.server import RewardModelServer, build_app

__all__ = [
    "DEFAULT_ANSWER_WORDS",
    "MISSING_LOGPROB",
    "BatchingConfig",
    "Conversation",
    "EndpointConfig",
    "PriorStep",
    "RewardModelClient",
    "RewardModelServer",
    "ScoreResult",
    "Scorer",
    "ScorerConfig",
    "ScorerOverloadedError",
    "ScoringInputError",
    "ServerConfig",
    "build_app",
    "build_prm_messages",
    "check_answer_words",
    "create_scorer",
    "register_scorer",
    "scorer_names",
    "two_way_softmax",
]
