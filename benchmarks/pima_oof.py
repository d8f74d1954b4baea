"""Pima calibration measured on out-of-fold predictions over many rows, not 154 test rows.

Repeated stratified K-fold over a set of rows: each fold reruns the whole ``best`` recipe as the
trainer runs it (a calibration split held out of the fold's training rows with the data set's own
size and seed, the bag of inner-fold members on the rest, a calibrator) and predicts the fold's
held-out rows. Every row is predicted once per repeat, so the pooled predictions of a repeat are
a calibration set as large as the rows given.

Several calibrators are compared on the same bags:

- ``none``: the bag's averaged probability;
- ``platt_cal_untested``: Platt scaling fitted on the calibration split and always applied
  (what the first calibrated versions ship);
- ``platt_cal``: the same, applied only when a likelihood-ratio test on the split finds the
  model miscalibrated (``training.calibration.fit_platt``, what the trainer ships now);
- ``platt_oof``: that test and fit on the bag's inner out-of-fold predictions plus the
  calibration split's predictions (every training row of the fold, none predicted by a model
  that saw it); this needs the recipe to hand its out-of-fold predictions to the trainer;
- ``isotonic_oof``: isotonic regression on the same rows.

Run on the tutorial split's training rows (to choose) and on all rows (to report), so the
choice is made without the test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

CALIBRATORS = ("none", "platt_cal_untested", "platt_cal", "platt_oof", "isotonic_oof")
FOLDS = 5
REPEATS = 3
CV_SEED = 0
RECIPE_SEED = 42  # the recipe's own seed (training.recipes.best.SEED)


def _isotonic(p_fit: np.ndarray, y_fit: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=1e-3, y_max=1 - 1e-3, out_of_bounds="clip")
    model.fit(p_fit, y_fit)
    return lambda p: np.asarray(model.predict(p), np.float64)


def _fold_predictions(
    x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, hp: dict[str, Any]
) -> dict[str, np.ndarray]:
    """The fold's held-out predictions under each calibrator."""
    from training import calibration
    from training.modeling import pima_bag
    from training.specs import Split, get_spec

    spec = get_spec("pima")
    split = Split("pima", x_tr, y_tr, x_te, np.zeros(len(x_te), np.int64), list(spec.labels))
    rest, x_cal, y_cal = spec.hold_out_calibration(split)
    bag = pima_bag.fit_bag(rest.x_train, rest.y_train, hp, RECIPE_SEED)
    p_te, p_cal = bag.predict(x_te), bag.predict(x_cal)
    p_pool = np.concatenate([bag.oof, p_cal])
    y_pool = np.concatenate([rest.y_train, y_cal])
    untested = calibration.fit_platt(p_cal[:, None], y_cal, critical=None)
    platt_cal = calibration.fit("platt", p_cal[:, None], y_cal)
    platt_oof = calibration.fit("platt", p_pool[:, None], y_pool)
    return {
        "none": p_te,
        "platt_cal_untested": untested.apply(p_te[:, None])[:, 0],
        "platt_cal": platt_cal.apply(p_te[:, None])[:, 0],
        "platt_oof": platt_oof.apply(p_te[:, None])[:, 0],
        "isotonic_oof": _isotonic(p_pool, y_pool)(p_te),
    }


def out_of_fold(
    x: np.ndarray,
    y: np.ndarray,
    folds: int = FOLDS,
    repeats: int = REPEATS,
    seed: int = CV_SEED,
    max_epochs: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per calibrator, ``[repeats, rows]`` out-of-fold probabilities of the positive label."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    from training.recipes import get_recipe

    hp = {**get_recipe("pima", "best").hyperparameters(max_epochs), "cv": False}
    started = time.perf_counter()
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    probs = {name: np.full((repeats, len(y)), np.nan) for name in CALIBRATORS}
    for k, (tr, te) in enumerate(cv.split(x, y)):
        fold = _fold_predictions(x[tr], y[tr], x[te], hp)
        for name in CALIBRATORS:
            probs[name][k // folds, te] = fold[name]
        if log is not None:
            log(f"   fold {k + 1}/{folds * repeats} ({time.perf_counter() - started:.0f} s)")
    return {"probs": probs, "seconds": round(time.perf_counter() - started, 1)}


def summarise(
    y: np.ndarray, probs: dict[str, np.ndarray], bins: int = 15, scheme: str = "width"
) -> dict[str, dict[str, Any]]:
    """Per calibrator: mean over repeats of the pooled out-of-fold ECE, Brier and log-loss,
    with the ECE's bootstrap interval and noise floor on the first repeat."""
    from training.calibration import brier_score
    from training.calibration_stats import ece, ece_report
    from training.metrics import cross_entropy

    out: dict[str, dict[str, Any]] = {}
    for name, rows in probs.items():
        eces = [ece(y, r[:, None], bins, scheme) for r in rows]
        report = ece_report(y, rows[0][:, None], bins, scheme)
        out[name] = {
            "ece_mean": round(float(np.mean(eces)), 6),
            "ece_per_repeat": [round(float(e), 6) for e in eces],
            "interval_first_repeat": list(report.interval),
            "floor_mean": round(report.floor_mean, 6),
            "floor_p95": round(report.floor_p95, 6),
            "brier": round(float(np.mean([brier_score(y, r[:, None]) for r in rows])), 6),
            "log_loss": round(float(np.mean([cross_entropy(y, r[:, None]) for r in rows])), 6),
        }
    return out
