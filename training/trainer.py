"""Fit a recipe on a data set, evaluate it on the real test set and export a new version."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from service.repository.disk import without_host_path
from service.serving import conformal
from training import calibration, ood_confidence
from training.export import export_version
from training.metrics import class_probabilities, classification_metrics
from training.recipes import get_recipe
from training.report import ReportData, write_report
from training.specs import Prepared, get_spec
from training.specs.images import OOD_CONFIDENCE, OOD_FLAGGED

SEED = 42
PREDICT_BATCH = 2048
CONFORMAL_FILE = "conformal.npy"
# Coverage and set size are measured on the test set at the alphas a version's default is chosen
# from (``conformal.choose_alpha``).
CONFORMAL_ALPHAS = conformal.ALPHA_CANDIDATES


@dataclass
class TrainOutcome:
    dataset: str
    recipe: str
    version_dir: Path
    metrics: dict[str, Any]
    seconds: float


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic TF ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def load_dataset(
    dataset: str,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    subset: int | None = None,
) -> Prepared:
    """Load and split a data set as its descriptor says (``training.specs``).

    ``subset`` keeps the first N training and test examples (smoke runs only).
    """
    return get_spec(dataset).load(data_dir=data_dir, cache_dir=cache_dir, subset=subset)


def predict_probabilities(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Batched forward pass (no ``model.predict``: it is slow and noisy for small models)."""
    parts = [
        np.asarray(model(x[i : i + PREDICT_BATCH], training=False))
        for i in range(0, len(x), PREDICT_BATCH)
    ]
    return np.concatenate(parts, axis=0)


def train_and_export(
    dataset: str,
    recipe_name: str = "tutorial",
    *,
    models_dir: Path,
    data: Prepared | None = None,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    epochs: int | None = None,
    subset: int | None = None,
    seed: int = SEED,
    verbose: int = 2,
    tflite: bool = True,
) -> TrainOutcome:
    """Train ``recipe_name`` on ``dataset``, evaluate on the test set and export a new version."""
    started = time.perf_counter()
    spec = get_spec(dataset)
    recipe = get_recipe(dataset, recipe_name)
    if data is None:
        data = spec.load(data_dir=data_dir, cache_dir=cache_dir, subset=subset)
    split, x_cal, y_cal = spec.hold_out_calibration(data.split)
    hp = recipe.hyperparameters(epochs)
    print(f"== {dataset} / {recipe.name}: {recipe.description}", flush=True)
    print(
        f"   train {split.x_train.shape}, calibration {x_cal.shape}, test {split.x_test.shape}, "
        f"data: {data.source}"
    )

    seed_everything(seed)
    fit_started = time.perf_counter()
    result = recipe.train(split, hp, verbose=verbose)
    fit_seconds = time.perf_counter() - fit_started

    calibrated = calibrate(spec, result.serving_model, split, x_cal, y_cal, result.threshold)
    probs, threshold = calibrated.probs, calibrated.threshold
    metrics = classification_metrics(split.y_test, probs, split.labels, threshold)
    metrics.update(result.extra_metrics)

    recipe_meta = {
        "name": recipe.name,
        "description": recipe.description,
        "hyperparameters": hp,
        "seed": seed,
    }
    training_meta: dict[str, Any] = {
        "seconds": round(fit_seconds, 2),
        "epochs_run": result.epochs_run,
        "history": result.history,
        "train_examples": len(split.x_train),
        "calibration_examples": len(x_cal),
        "test_examples": len(split.x_test),
        "subset": subset,  # a smoke run's: --if-missing does not count it as the recipe's version
    }
    report = ReportData(
        dataset=dataset,
        description=spec.description,
        labels=split.labels,
        recipe=recipe_meta,
        training=training_meta,
        metrics=metrics,
        data_source=without_host_path(data.source),
        y_test=split.y_test,
        probs=probs,
        samples=data.samples,
        threshold=threshold,
        probs_before=calibrated.probs_before,
        calibration=calibrated.calibration,
        conformal=calibrated.conformal,
    )
    metadata = {
        **spec.metadata(data, threshold),
        "metrics": metrics,
        "recipe": recipe_meta,
        "training": training_meta,
        "data": {"source": without_host_path(data.source), "sha256": data.sha256},
        "calibration": calibrated.calibration,
    }

    def write_artifacts(path: Path) -> dict[str, Any]:
        conformal.save(calibrated.scores, path / CONFORMAL_FILE)
        blocks = {**spec.write_artifacts(split, path), "conformal": calibrated.conformal}
        if "ood" in blocks:
            blocks["ood"] = ood_confidence.with_confidence(
                blocks["ood"],
                path,
                lambda x: predict_probabilities(calibrated.model, x),
                x_cal,
                OOD_FLAGGED,
                OOD_CONFIDENCE,
                (split.x_test, calibrated.probs),
            )
        return blocks

    version_dir = export_version(
        calibrated.model,
        models_dir=Path(models_dir),
        name=dataset,
        metadata=metadata,
        golden_inputs=spec.golden_inputs(split),
        parity_inputs=spec.parity_inputs(split),
        write_report=lambda path: write_report(path, report),
        write_artifacts=write_artifacts,
        tflite=tflite,
    )
    seconds = time.perf_counter() - started
    shown = f"accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}"
    if metrics.get("roc_auc") is not None:
        shown += f", ROC-AUC {metrics['roc_auc']:.4f}"
    before, alpha = calibrated.calibration["before"], calibrated.conformal["alpha"]
    test_sets = next(row for row in calibrated.conformal["test"] if row["alpha"] == alpha)
    print(f"   test: {shown}, ECE {before['ece']:.4f} -> {metrics['ece']:.4f} (calibrated)")
    print(
        f"   prediction sets at alpha {test_sets['alpha']}: coverage {test_sets['coverage']:.4f}, "
        f"mean size {test_sets['mean_set_size']:.3f}"
    )
    print(f"   wrote {version_dir} in {seconds:.1f} s (fit {fit_seconds:.1f} s)", flush=True)
    return TrainOutcome(dataset, recipe.name, version_dir, metrics, seconds)


@dataclass
class Calibrated:
    """The calibrated serving model, and what the metadata and the report say about it."""

    model: keras.Model
    probs: np.ndarray  # the calibrated model's test-set probabilities
    probs_before: np.ndarray  # the trained model's
    threshold: float | None
    scores: np.ndarray  # sorted conformal scores of the calibration split
    calibration: dict[str, Any]
    conformal: dict[str, Any]


def calibrate(
    spec: Any,
    trained: keras.Model,
    split: Any,
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    chosen_threshold: float | None,
) -> Calibrated:
    """Fit the data set's calibrator on the calibration split, wrap it into the model, and score
    the split for the conformal prediction sets with the calibrated probabilities."""
    p_cal_before = predict_probabilities(trained, x_cal)
    calibrator = calibration.fit(spec.calibration_method, p_cal_before, y_cal)
    model = calibration.wrap(trained, calibrator)
    probs_before = predict_probabilities(trained, split.x_test)
    probs = predict_probabilities(model, split.x_test)
    threshold_before = spec.decision_threshold(chosen_threshold)
    threshold = calibrator.threshold(threshold_before)
    accuracy_before = classification_metrics(
        split.y_test, probs_before, split.labels, threshold_before
    )["accuracy"]
    accuracy_after = classification_metrics(split.y_test, probs, split.labels, threshold)[
        "accuracy"
    ]
    cal_probs = class_probabilities(predict_probabilities(model, x_cal))
    scores = conformal.scores(cal_probs, y_cal)
    alpha, on_calibration = conformal.choose_alpha(scores, cal_probs, conformal.DELTA)
    block = {
        "method": calibrator.method,
        "params": calibrator.params,
        "split": {**spec.calibration_spec(), "examples": len(y_cal)},
        "measured_on": f"test split ({len(split.y_test)} examples)",
        "before": {
            **calibration.summary(split.y_test, probs_before),
            "accuracy": accuracy_before,
        },
        "after": {**calibration.summary(split.y_test, probs), "accuracy": accuracy_after},
        "calibration_split": {
            "before": calibration.summary(y_cal, p_cal_before),
            "after": calibration.summary(y_cal, calibrator.apply(p_cal_before)),
        },
    }
    if threshold_before is not None:
        block["threshold"] = {"before": threshold_before, "after": threshold}
    tests = [
        prediction_set_figures(scores, class_probabilities(probs), split.y_test, a, conformal.DELTA)
        for a in CONFORMAL_ALPHAS
    ]
    conformal_block = {
        "method": conformal.METHOD,
        "file": CONFORMAL_FILE,
        "n": len(scores),
        "alpha": alpha,
        "delta": conformal.DELTA,
        "alpha_rule": "of the candidates, the one whose sets on the calibration split most often "
        "hold exactly one label (ties: the smaller alpha)",
        "calibration_split": on_calibration,
        "score": "1 - calibrated probability of the true label, on the calibration split",
        "test": tests,
    }
    return Calibrated(model, probs, probs_before, threshold, scores, block, conformal_block)


def prediction_set_figures(
    scores: np.ndarray,
    class_probs: np.ndarray,
    y: np.ndarray,
    alpha: float,
    delta: float | None = None,
) -> dict[str, Any]:
    """Coverage and set sizes of the prediction sets on labelled examples at ``alpha``."""
    return conformal.set_figures(scores, class_probs, alpha, delta, labels=y)
