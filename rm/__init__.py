"""The process reward model (PRM): prompt, scoring backends, scoring server and its client.

The PRM judges a candidate step with a yes/no question; its latent reward is the two-way softmax
of the "yes" and "no" next-token logits. Training data and fine-tuning live beside this:
the tree format (`rm.tree`; `agent.collect` expands the trees, a layer up), `label_trees` (scores,
sibling pairs, SFT export) and `rm.train` (fine-tuning).
"""

from rm.client import RewardModelClient
from rm.config import BatchingConfig, EndpointConfig, PrefixSharingConfig, ScorerConfig, ServerConfig
from rm.errors import ScorerOverloadedError, ScoringInputError
from rm.export import SftExample, SftWriter, dataset_info_entry, pair_examples, read_train_records
from rm.labelling import LabelStats, label_trees
from rm.labels import LabelConfig, LabeledPair, NodeScore, TreeNode, label_pair, score_tree, sibling_pairs, tree_nodes
from rm.prompt import DEFAULT_ANSWER_WORDS, PriorStep, build_prm_messages, check_answer_words
from rm.scorers import Scorer, create_scorer, register_scorer, scorer_names
from rm.scores import MISSING_LOGPROB, Conversation, ScoreResult, two_way_softmax
from rm.server import RewardModelServer, build_app
from rm.tree import CollectedTree, ExecRecord, PathEntry, load_tree, tree_file

__all__ = [
    "DEFAULT_ANSWER_WORDS",
    "MISSING_LOGPROB",
    "BatchingConfig",
    "CollectedTree",
    "Conversation",
    "EndpointConfig",
    "ExecRecord",
    "LabelConfig",
    "LabelStats",
    "LabeledPair",
    "NodeScore",
    "PathEntry",
    "PrefixSharingConfig",
    "PriorStep",
    "RewardModelClient",
    "RewardModelServer",
    "ScoreResult",
    "Scorer",
    "ScorerConfig",
    "ScorerOverloadedError",
    "ScoringInputError",
    "ServerConfig",
    "SftExample",
    "SftWriter",
    "TreeNode",
    "build_app",
    "build_prm_messages",
    "check_answer_words",
    "create_scorer",
    "dataset_info_entry",
    "label_pair",
    "label_trees",
    "load_tree",
    "pair_examples",
    "read_train_records",
    "register_scorer",
    "score_tree",
    "scorer_names",
    "sibling_pairs",
    "tree_file",
    "tree_nodes",
    "two_way_softmax",
]
