"""How well a PRM separates siblings: pairwise accuracy on held-out pairs, and plain label accuracy."""

from __future__ import annotations

from collections.abc import Sequence


def pair_metrics(scores: Sequence[float], labels: Sequence[str], pairs: Sequence[str]) -> dict[str, float]:
    """`pairwise_accuracy`: share of pairs with one "yes" and one "no" where the "yes" scores higher (a tie
    counts half); `label_accuracy`: share of examples on the right side of 0.5; `pairs`: pairs compared."""
    sides: dict[str, dict[str, list[float]]] = {}
    for score, label, pair in zip(scores, labels, pairs, strict=True):
        sides.setdefault(pair, {"yes": [], "no": []})[label].append(score)
    wins = compared = 0.0
    for side in sides.values():
        for yes in side["yes"]:
            for no in side["no"]:
                compared += 1
                wins += 1.0 if yes > no else 0.5 if yes == no else 0.0
    right = sum(1 for score, label in zip(scores, labels) if (score > 0.5) == (label == "yes"))
    return {
        "pairwise_accuracy": wins / compared if compared else float("nan"),
        "label_accuracy": right / len(scores) if scores else float("nan"),
        "pairs": compared,
    }
