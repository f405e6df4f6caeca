"""Node scores and sibling labels on hand-built trees whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from rm.labels import LabelConfig, NodeScore, label_pair, score_tree, sibling_groups, sibling_pairs
from tests.rm_data.trees import OK, RAISED, UNBALANCED, Node, scoring_nodes

REFERENCE = LabelConfig(codeless_leaf="succeeded", tie_break="both-no")


def scores_of(spec: dict[str, Node], config: LabelConfig = LabelConfig()) -> dict[str, NodeScore]:
    return score_tree(scoring_nodes(spec), config)


def test_unbalanced_tree_with_codeless_leaves() -> None:
    scores = scores_of(UNBALANCED)
    # Leaves: 1-1-1 ran, 1-1-2 answered in text ([All Finished]), 1-2 wrote prose only, 2-1 raised, 2-2 ran.
    one = scores["1-1"]
    assert (one.current_exec, one.leaves, one.hard) == (True, 3, 1)
    assert one.soft == pytest.approx(2 / 3)
    assert one.tau == 5  # (3 - 1) + (3 - 1) + (2 - 1)
    assert one.latent == pytest.approx(0.9 ** (1 / 3) * 0.95 ** (5 / 20))
    assert (scores["1-1-1"].soft, scores["1-1-1"].tau) == (1.0, 2)
    assert scores["1-1-1"].latent == pytest.approx(0.95**0.1)
    assert scores["1-1-1-2"] == NodeScore(current_exec=True, soft=1.0, hard=1, tau=0, latent=1.0, leaves=1)
    assert scores["1-1-2"] == NodeScore(current_exec=False, soft=0.0, hard=0, tau=0, latent=pytest.approx(0.9), leaves=1)
    two = scores["1-2"]
    assert (two.current_exec, two.soft, two.hard, two.tau) == (False, 0.5, 1, 2)
    assert two.latent == pytest.approx(0.9**0.5 * 0.95**0.1)
    assert (scores["1-2-1"].soft, scores["1-2-2"].soft) == (0.0, 1.0)


def test_reference_rule_counts_every_codeless_leaf_as_succeeded() -> None:
    scores = scores_of(UNBALANCED, REFERENCE)
    assert scores["1-1-2"].current_exec and scores["1-1-2"].soft == 1.0
    assert scores["1-1"].soft == 1.0 and scores["1-1"].latent == pytest.approx(0.95 ** (5 / 20))
    assert scores["1-2"].soft == 0.5, "leaves with code keep their execution status"


def test_alpha_beta_and_horizon_are_used() -> None:
    config = LabelConfig(alpha=0.5, beta=0.8, horizon=4)
    scores = scores_of(UNBALANCED, config)
    assert scores["1-1"].latent == pytest.approx(0.5 ** (1 / 3) * 0.8 ** (5 / 4))
    assert scores["1-2-1"].latent == pytest.approx(0.5)


def test_single_path_scores_every_node_and_makes_no_pairs() -> None:
    spec = {"1-1": Node(False, True, OK), "1-1-1": Node(False, True, OK), "1-1-1-1": Node(True, True, OK, finished=True)}
    scores = scores_of(spec)
    assert [scores[p].tau for p in ("1-1", "1-1-1", "1-1-1-1")] == [2, 1, 0]
    assert all(scores[p].soft == 1.0 and scores[p].hard == 1 for p in spec)
    assert sibling_pairs(scores) == [] and sibling_groups(spec) == 0


def test_pairs_of_the_unbalanced_tree() -> None:
    pairs = sibling_pairs(scores_of(UNBALANCED))
    found = [(p.first, p.second, p.first_label, p.second_label, p.reason) for p in pairs]
    assert found == [
        ("1-1", "1-2", "yes", "no", "execution"),
        ("1-1-1", "1-1-2", "yes", "no", "execution"),
        ("1-2-1", "1-2-2", "no", "yes", "execution"),
    ], "1-1-1 and 1-1-2 both succeed with equal scores: no pair"
    assert sibling_groups(UNBALANCED) == 4


def test_hard_decides_when_both_siblings_failed_to_run() -> None:
    spec = {
        "1-1": Node(False, True, RAISED), "1-1-1": Node(True, True, OK, True), "1-1-2": Node(True, True, RAISED, True),
        "1-2": Node(False, True, RAISED), "1-2-1": Node(True, True, RAISED, True), "1-2-2": Node(True, True, RAISED, True),
    }  # fmt: skip
    pairs = {(p.first, p.second): p for p in sibling_pairs(scores_of(spec))}
    assert (pairs["1-1", "1-2"].first_label, pairs["1-1", "1-2"].second_label, pairs["1-1", "1-2"].reason) == ("yes", "no", "hard")
    assert ("1-2-1", "1-2-2") not in pairs, "identical failing siblings do not differ"


def test_soft_decides_when_hard_ties() -> None:
    spec = {
        "1-1": Node(False, True, OK), "1-1-1": Node(True, True, OK, True), "1-1-2": Node(True, True, RAISED, True),
        "1-2": Node(False, True, OK), "1-2-1": Node(True, True, OK, True), "1-2-2": Node(True, True, OK, True),
    }  # fmt: skip
    first = sibling_pairs(scores_of(spec))[0]
    assert (first.first, first.second, first.first_label, first.second_label, first.reason) == ("1-1", "1-2", "no", "yes", "soft")
    assert sibling_pairs(scores_of(spec), REFERENCE)[0].reason == "soft", "the reference decides on soft too"


def test_latent_breaks_a_tie_on_execution_hard_and_soft() -> None:
    # Unbalanced siblings: 1 answers at once, 2 needs one more step; both always succeed.
    spec = {
        "1-1": Node(True, True, OK, True), "1-2": Node(False, True, OK),
        "1-2-1": Node(True, True, OK, True), "1-2-2": Node(True, True, OK, True),
    }  # fmt: skip
    scores = scores_of(spec)
    assert scores["1-1"].latent == 1.0 and scores["1-2"].latent == pytest.approx(0.95**0.1)
    (ours,) = sibling_pairs(scores)
    assert (ours.first_label, ours.second_label, ours.reason) == ("yes", "no", "latent")
    (reference,) = sibling_pairs(scores_of(spec, REFERENCE), REFERENCE)
    assert (reference.first_label, reference.second_label, reference.reason) == ("no", "no", "tie")


def test_label_pair_rules_directly() -> None:
    ran = NodeScore(current_exec=True, soft=0.0, hard=0, tau=3, latent=0.8, leaves=2)
    failed = NodeScore(current_exec=False, soft=1.0, hard=1, tau=1, latent=0.99, leaves=2)
    assert label_pair(ran, failed) == ("yes", "no", "execution"), "execution outranks every estimate"
    assert label_pair(failed, ran) == ("no", "yes", "execution")
    equal = NodeScore(current_exec=True, soft=0.5, hard=1, tau=2, latent=0.9, leaves=2)
    assert label_pair(equal, equal) == ("no", "no", "tie")


def test_more_than_two_siblings_are_paired_all_ways() -> None:
    spec = {"1-1": Node(True, True, OK, True), "1-2": Node(True, True, RAISED, True), "1-3": Node(True, False, RAISED)}
    pairs = [(p.first, p.second, p.first_label, p.second_label) for p in sibling_pairs(scores_of(spec))]
    assert pairs == [("1-1", "1-2", "yes", "no"), ("1-1", "1-3", "yes", "no")], "2 and 3 both failed with equal scores"
