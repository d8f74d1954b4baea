"""Pima ``best``: a bag of small Keras models on inner folds, a threshold from out-of-fold data.

``fit_bag(x, y, hp)`` splits the training rows into ``inner_folds`` stratified folds. Each member
is trained on the other folds with early stopping on its own held-out fold (best weights
restored), and predicts that fold: those out-of-fold predictions choose the decision threshold.
The serving model averages the members' probabilities. ``cross_validate`` repeats the whole
procedure (threshold included) on outer folds, for the mean ± std figures.

Training is full-batch (a few hundred rows) with a compiled step function: at this size Keras's
``fit`` loop costs far more per epoch than the step itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from training.modeling.pima_layers import N_FEATURES, PimaFeatures


def build_member(x_train: np.ndarray, hp: dict[str, Any], seed: int) -> keras.Model:
    """Raw ``[N, 8]`` → PimaFeatures (adapted on ``x_train``) → [Dense-ReLU-Dropout] → sigmoid."""
    keras.utils.set_random_seed(seed)
    features = PimaFeatures(
        keep=hp["features"],
        log=hp["log"],
        hinges=hp["hinges"],
        knots=hp["knots"],
        indicators=hp["indicators"],
        name="pima_features",
    )
    features.adapt(x_train)
    inputs = keras.Input(shape=(N_FEATURES,), dtype="float32", name="features")
    x = features(inputs)
    l2 = keras.regularizers.l2(hp["l2"])
    if hp["hidden_units"]:
        hidden = keras.layers.Dense(hp["hidden_units"], activation="relu", kernel_regularizer=l2)
        x = keras.layers.Dropout(hp["dropout"])(hidden(x))
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=l2, name="p")(x)
    return keras.Model(inputs, outputs, name=f"member_{seed}")


def train_member(
    model: keras.Model,
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    hp: dict[str, Any],
) -> dict[str, list[float]]:
    """Full-batch Adam; stop after ``patience`` epochs without a better val_loss, keep the best."""
    optimizer = keras.optimizers.Adam(hp["learning_rate"])
    bce = keras.losses.BinaryCrossentropy()
    variables = model.trainable_variables
    xt, yt = tf.constant(x_tr, tf.float32), tf.constant(y_tr.reshape(-1, 1), tf.float32)
    xv, yv = tf.constant(x_val, tf.float32), tf.constant(y_val.reshape(-1, 1), tf.float32)

    @tf.function
    def step() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            p = model(xt, training=True)
            loss = bce(yt, p)
            total = loss + tf.add_n(model.losses) if model.losses else loss
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables, strict=True))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(p >= 0.5, tf.float32), yt), tf.float32))
        return loss, accuracy, bce(yv, model(xv, training=False))

    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": []}
    best, best_weights, waited = np.inf, model.get_weights(), 0
    for _ in range(hp["max_epochs"]):
        loss, accuracy, val_loss = (float(v) for v in step())
        history["loss"].append(loss)
        history["accuracy"].append(accuracy)
        history["val_loss"].append(val_loss)
        if val_loss < best - hp["min_delta"]:
            best, best_weights, waited = val_loss, model.get_weights(), 0
        else:
            waited += 1
            if waited >= hp["patience"]:
                break
    model.set_weights(best_weights)
    return history


def choose_threshold(y: np.ndarray, p: np.ndarray, low: float, high: float) -> float:
    """The accuracy-maximising threshold on a 0.01 grid in [low, high]; ties go nearest to 0.5."""
    grid = np.round(np.arange(low, high + 1e-9, 0.01), 2)
    accuracy = np.array([np.mean((p >= t) == y) for t in grid])
    best = np.flatnonzero(accuracy >= accuracy.max() - 1e-12)
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])


def platt_threshold(y: np.ndarray, p: np.ndarray, low: float, high: float) -> float:
    """The raw probability at which a Platt-calibrated probability crosses 0.5.

    A logistic regression of ``y`` on logit(p) (Platt scaling) has its decision boundary at
    logit(p) = -b / a; for accuracy that is the Bayes threshold on calibrated probabilities. It
    is far less noisy than maximising accuracy on a grid. Clipped to [low, high].
    """
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    z = np.log(q / (1 - q))
    a, b = 1.0, 0.0
    for _ in range(50):  # Newton's method on the 2-parameter log-likelihood
        s = 1.0 / (1.0 + np.exp(-(a * z + b)))
        w = s * (1 - s) + 1e-9
        g = np.array([np.sum((s - y) * z), np.sum(s - y)])
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]])
        step = np.linalg.solve(h + 1e-9 * np.eye(2), g)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    if a <= 0:  # no usable ranking: fall back to the middle
        return 0.5
    return float(np.clip(1.0 / (1.0 + np.exp(b / a)), low, high))


THRESHOLD_RULES: dict[str, Callable[[np.ndarray, np.ndarray, float, float], float]] = {
    "oof_accuracy": choose_threshold,
    "oof_platt": platt_threshold,
}


@dataclass
class Bag:
    members: list[keras.Model]
    threshold: float
    oof: np.ndarray
    histories: list[dict[str, list[float]]] = field(default_factory=list)

    def predict(self, x: np.ndarray) -> np.ndarray:
        xs = tf.constant(x, tf.float32)
        return np.mean([np.asarray(m(xs, training=False))[:, 0] for m in self.members], axis=0)

    def serving_model(self) -> keras.Model:
        """One Keras model: raw ``[N, 8]`` → mean of the members' sigmoid outputs ``[N, 1]``."""
        inputs = keras.Input(shape=(N_FEATURES,), dtype="float32", name="features")
        outputs = [member(inputs) for member in self.members]
        mean = keras.layers.Average(name="probability")(outputs) if len(outputs) > 1 else outputs[0]
        return keras.Model(inputs, mean, name="pima_best")


def fit_bag(x: np.ndarray, y: np.ndarray, hp: dict[str, Any], seed: int) -> Bag:
    """Members on inner folds, each early-stopped on its held-out fold; threshold from OOF."""
    folds = StratifiedKFold(hp["inner_folds"], shuffle=True, random_state=seed)
    oof = np.zeros(len(y))
    members, histories = [], []
    for k, (tr, va) in enumerate(folds.split(x, y)):
        member = build_member(x[tr], hp, seed + k)
        histories.append(train_member(member, x[tr], y[tr], x[va], y[va], hp))
        oof[va] = np.asarray(member(tf.constant(x[va], tf.float32), training=False))[:, 0]
        members.append(member)
    low, high = hp["threshold_range"]
    threshold = THRESHOLD_RULES[hp["threshold_rule"]](y, oof, low, high)
    return Bag(members, threshold, oof, histories)


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    hp: dict[str, Any],
    seed: int,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Repeated stratified K-fold of the whole recipe: mean ± std accuracy and ROC-AUC."""
    started = time.perf_counter()
    cv = RepeatedStratifiedKFold(
        n_splits=hp["cv_folds"], n_repeats=hp["cv_repeats"], random_state=hp["cv_seed"]
    )
    accuracy, auc, thresholds = [], [], []
    for n, (tr, te) in enumerate(cv.split(x, y)):
        bag = fit_bag(x[tr], y[tr], hp, seed)
        p = bag.predict(x[te])
        accuracy.append(float(np.mean((p >= bag.threshold) == y[te])))
        auc.append(float(roc_auc_score(y[te], p)))
        thresholds.append(bag.threshold)
        if log is not None:
            log(f"   cv fold {n + 1}: accuracy {accuracy[-1]:.4f}, ROC-AUC {auc[-1]:.4f}")
    return {
        "accuracy_mean": float(np.mean(accuracy)),
        "accuracy_std": float(np.std(accuracy)),
        "auc_mean": float(np.mean(auc)),
        "auc_std": float(np.std(auc)),
        "folds": hp["cv_folds"],
        "repeats": hp["cv_repeats"],
        "seed": hp["cv_seed"],
        "examples": len(y),
        "per_fold": {"accuracy": accuracy, "roc_auc": auc, "threshold": thresholds},
        "seconds": round(time.perf_counter() - started, 2),
    }
