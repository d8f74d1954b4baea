"""Out-of-distribution measures: AUROC of a version's OOD score, on the photo set and on the test
sets.

On the photo set the score is computed on what a preprocessing produced, for the pictures it did
not judge blank: the version's own photos (in distribution) against the pages without a digit
(``ood`` and ``marks``) and against the other data set's photos (Fashion-MNIST photos sent to
mnist, digits sent to fashion_mnist). A page judged blank never reaches the score, so how many
pages got past that gate is reported beside the AUROC.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw

DataSet = Literal["mnist", "fashion_mnist"]
OTHER: dict[str, DataSet] = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}


def auroc(inside: np.ndarray, outside: np.ndarray) -> float | None:
    """P(score of an outside picture > score of an inside one), ties half (Mann-Whitney)."""
    a, b = np.asarray(inside, float), np.asarray(outside, float)
    if len(a) == 0 or len(b) == 0:
        return None
    greater = (b[:, None] > a[None, :]).mean()
    equal = (b[:, None] == a[None, :]).mean()
    return float(greater + 0.5 * equal)


def single_strokes(n: int, rng: np.random.Generator) -> np.ndarray:
    """28x28 inputs of one near-horizontal line or flat arc (an upright one is a fair "1")."""
    out = np.zeros((n, 28, 28), np.float32)
    for i in range(n):
        img = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(img)
        y = float(rng.uniform(8, 20))
        dy = float(rng.uniform(-5, 5))
        if i % 2:
            draw.line([(4, y - dy), (24, y + dy)], fill=255, width=int(rng.integers(2, 4)))
        else:
            draw.arc([4, y - 6, 24, y + 6], 180, 320, fill=255, width=int(rng.integers(2, 4)))
        out[i] = np.asarray(img, np.float32) / 255.0
    return out


def on_test_sets(task: Any, name: DataSet, n: int = 2000) -> dict[str, Any]:
    """The version's own test images against the other test set, noise, blank and single
    strokes; and the share of its own test images flagged."""
    from training.datasets import load_images

    rng = np.random.default_rng(7)
    own = np.asarray(load_images(name).x_test[:n], np.float32) / 255.0
    other = np.asarray(load_images(OTHER[name]).x_test[:n], np.float32) / 255.0
    s_own = task.ood_scores(own)
    cases = {
        "other test set": other,
        "noise": rng.random((500, 28, 28), dtype=np.float32),
        "blank": np.zeros((50, 28, 28), np.float32) + rng.uniform(0, 0.02, (50, 1, 1)),
        "single stroke": single_strokes(500, rng),
    }
    return {
        "test_flagged": float(np.mean(task.ood_flags(own))),
        "auroc": {key: auroc(s_own, task.ood_scores(x)) for key, x in cases.items()},
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
