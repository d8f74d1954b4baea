"""Whether a version's OOD score weighs its classifier's doubt, and the threshold of that score.

The density score (``service.serving.ood``) looks at the input only. Weighed by doubt
(``1 - top probability``) it separates more for a model that is unsure on what is not its kind
(mnist's CNN on a garment framed as a digit), and less for one that is confidently wrong on it
(an MLP on noise, a Fashion-MNIST CNN on digits). So each version is measured both ways on inputs
that are no image of any data set: uniform noise, near-blank pages and single strokes, made here
with a fixed seed, against the version's own calibration split (held out from training and from
the density's fit). The doubt-weighed score is kept only when its mean AUROC over the three is
higher; its threshold is then chosen on the calibration split by the rule the density's is chosen
by on held-out training images (``ood.threshold_flagging``: at most ``flagged`` of real images
flagged, with probability ``confidence``).

The same rule runs when a version is trained and when it is quantised (the probabilities differ).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from service.serving import ood

OUTLIERS = 500  # per kind
OUTLIER_SEED = 23
SCORES = ("density", "weighed")


def single_strokes(n: int, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """Inputs of one near-horizontal line or flat arc (an upright one is a fair "1")."""
    out = np.zeros((n, side, side), np.float32)
    unit = side / 28
    for i in range(n):
        img = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(img)
        y = float(rng.uniform(8, 20)) * unit
        dy = float(rng.uniform(-5, 5)) * unit
        width = max(1, round(int(rng.integers(2, 4)) * unit))
        if i % 2:
            draw.line([(4 * unit, y - dy), (24 * unit, y + dy)], fill=255, width=width)
        else:
            box = [4 * unit, y - 6 * unit, 24 * unit, y + 6 * unit]
            draw.arc(box, 180, 320, fill=255, width=width)
        out[i] = np.asarray(img, np.float32) / 255.0
    return out


def synthetic_outliers(shape: tuple[int, ...], n: int, seed: int) -> dict[str, np.ndarray]:
    """Noise, near-blank pages and single strokes of input ``shape`` (a square image)."""
    rng = np.random.default_rng(seed)
    side = shape[0]
    return {
        "noise": rng.random((n, *shape), dtype=np.float32),
        "near-blank": (np.zeros((n, *shape)) + rng.uniform(0, 0.02, (n, 1, 1))).astype(np.float32),
        "single stroke": single_strokes(n, rng, side).reshape(n, *shape),
    }


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside score > an inside one), ties half."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))


def confidence_block(
    model: ood.OodModel,
    predict: Callable[[np.ndarray], np.ndarray],
    x_held: np.ndarray,
    flagged: float,
    confidence: float,
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The ``ood.confidence`` metadata block of a version (see the module doc).

    ``model`` is the version's density model; ``predict`` its served probabilities; ``x_held``
    its calibration split; ``test`` (optional) the test images and the probabilities the caller
    already has for them, to report the share flagged.
    """
    outliers = synthetic_outliers(tuple(x_held.shape[1:]), OUTLIERS, OUTLIER_SEED)
    held_probs = predict(x_held)
    density_held = model.input_scores(x_held)
    relative_held = density_held / model.threshold
    weighed_held = ood.weigh_by_doubt(relative_held, held_probs)
    by_kind: dict[str, dict[str, float]] = {}
    for kind, x in outliers.items():
        density = model.input_scores(x)
        weighed = ood.weigh_by_doubt(density / model.threshold, predict(x))
        by_kind[kind] = {
            "density": round(auroc(density_held, density), 4),
            "weighed": round(auroc(weighed_held, weighed), 4),
        }
    means = {key: float(np.mean([row[key] for row in by_kind.values()])) for key in SCORES}
    weighed_wins = means["weighed"] > means["density"]
    block: dict[str, Any] = {
        "weighed": weighed_wins,
        "score": "density score / ood.threshold x (1 - top probability)",
        "rule": "weighed when its mean AUROC over synthetic outliers (noise, near-blank pages, "
        "single strokes; calibration split inside) beats the density score's",
        "auroc_synthetic": by_kind,
        "mean_auroc_synthetic": {key: round(value, 4) for key, value in means.items()},
    }
    if not weighed_wins:
        return block
    threshold = ood.threshold_flagging(weighed_held, flagged, confidence)
    block.update(
        {
            "threshold": threshold,
            "threshold_from": f"{len(x_held)} calibration-split images",
            "in_distribution_flagged": flagged,
            "flagged_confidence": ood.attained_confidence(
                len(weighed_held), flagged, confidence, int((weighed_held > threshold).sum())
            ),
        }
    )
    if test is not None:
        fitted = dataclasses.replace(model, confidence_threshold=threshold)
        flags = fitted.flags(fitted.scores(*test))
        block["test_flagged"] = round(float(np.mean(flags)), 4)
    return block


def with_confidence(
    block: dict[str, Any],
    folder: Path,
    predict: Callable[[np.ndarray], np.ndarray],
    x_held: np.ndarray,
    flagged: float,
    confidence: float,
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The version's ``ood`` block (its density model in ``folder``) with the ``confidence``
    block measured for ``predict``, replacing any the block had (a quantised copy's source's)."""
    model = ood.from_arrays(ood.read_arrays(folder, block["file"]), float(block["threshold"]))
    return {
        **block,
        "confidence": confidence_block(model, predict, x_held, flagged, confidence, test),
    }
