"""Out-of-distribution measures: AUROC of a version's OOD score, on the photo set and on the test
sets.

On the photo set the score is computed on what a preprocessing produced, for the pictures it did
not judge blank: the version's own photos (in distribution) against the pages without a digit
(``ood`` and ``marks``) and against the other data set's photos (Fashion-MNIST photos sent to
mnist, digits sent to fashion_mnist). A page judged blank never reaches the score, so how many
pages got past that gate is reported beside the AUROC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

DataSet = Literal["mnist", "fashion_mnist"]
OTHER: dict[str, DataSet] = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}


def auroc(inside: np.ndarray, outside: np.ndarray) -> float | None:
    """P(score of an outside picture > score of an inside one), ties half; None when either side
    is empty (no picture got past the blank check, say). The training rule's own measure."""
    from training.ood_confidence import auroc as measured

    a, b = np.asarray(inside, float), np.asarray(outside, float)
    if len(a) == 0 or len(b) == 0:
        return None
    return measured(a, b)


SYNTHETIC = 500  # synthetic outliers of each kind


def on_test_sets(
    task: Any, name: DataSet, predict: Callable[[np.ndarray], np.ndarray], n: int = 2000
) -> dict[str, Any]:
    """The version's own test images against the other test set (``n`` of each) and the
    training rule's synthetic outliers (``SYNTHETIC`` of each kind: noise, near-blank pages,
    single strokes; drawn with another seed than the rule's), by AUROC (``predict``: the
    version's probabilities); and the share of all its own test images flagged."""
    from training.datasets import load_images
    from training.ood_confidence import synthetic_outliers

    every = np.asarray(load_images(name).x_test, np.float32) / 255.0
    own = every[:n]
    other = np.asarray(load_images(OTHER[name]).x_test[:n], np.float32) / 255.0
    p_own = predict(own)
    s_own = task.ood_scores(own, p_own)
    cases = {"other test set": other, **synthetic_outliers(own.shape[1:], SYNTHETIC, seed=7)}
    return {
        "test_flagged": float(np.mean(task.ood_flags(every, predict(every)))),
        "auroc": {key: auroc(s_own, task.ood_scores(x, predict(x))) for key, x in cases.items()},
    }


def photo_ood(
    roles: np.ndarray, scores: np.ndarray, flags: np.ndarray, passed: np.ndarray
) -> dict[str, Any]:
    """AUROCs and shares for one split. ``roles`` per picture: own, page or other; ``scores``
    and ``flags`` are defined where ``passed`` (not judged blank)."""
    own, page, other = (roles == "own"), (roles == "page"), (roles == "other")
    inside = scores[own & passed]

    def answered(sel: np.ndarray) -> float | None:
        """Share answered with a label: neither judged blank nor flagged."""
        n = int(sel.sum())
        return None if n == 0 else float((sel & passed & ~flags).sum() / n)

    return {
        "auroc_vs_pages": auroc(inside, scores[page & passed]),
        "pages_past_gate": int((page & passed).sum()),
        "pages": int(page.sum()),
        "auroc_vs_other": auroc(inside, scores[other & passed]),
        "own_flagged": None if not (own & passed).any() else float(flags[own & passed].mean()),
        "pages_answered": answered(page),
        "other_answered": answered(other),
    }
