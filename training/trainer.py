"""Fit a recipe on a data set, evaluate it on the real test set and export a new version."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.export import export_version
from training.metrics import classification_metrics
from training.recipes import get_recipe
from training.report import ReportData, write_report
from training.specs import Prepared, get_spec

SEED = 42
PREDICT_BATCH = 2048


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
    split = data.split
    hp = recipe.hyperparameters(epochs)
    print(f"== {dataset} / {recipe.name}: {recipe.description}", flush=True)
    print(f"   train {split.x_train.shape}, test {split.x_test.shape}, data: {data.source}")

    seed_everything(seed)
    fit_started = time.perf_counter()
    result = recipe.train(split, hp, verbose=verbose)
    fit_seconds = time.perf_counter() - fit_started

    probs = predict_probabilities(result.serving_model, split.x_test)
    threshold = spec.decision_threshold(result.threshold)
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
        "test_examples": len(split.x_test),
    }
    report = ReportData(
        dataset=dataset,
        description=spec.description,
        labels=split.labels,
        recipe=recipe_meta,
        training=training_meta,
        metrics=metrics,
        data_source=data.source,
        y_test=split.y_test,
        probs=probs,
        samples=data.samples,
        threshold=threshold,
    )
    metadata = {
        **spec.metadata(data, threshold),
        "metrics": metrics,
        "recipe": recipe_meta,
        "training": training_meta,
        "data": {"source": data.source, "sha256": data.sha256},
    }
    version_dir = export_version(
        result.serving_model,
        models_dir=Path(models_dir),
        name=dataset,
        metadata=metadata,
        golden_inputs=spec.golden_inputs(split),
        parity_inputs=spec.parity_inputs(split),
        write_report=lambda path: write_report(path, report),
        write_artifacts=lambda path: spec.write_artifacts(split, path),
        tflite=tflite,
    )
    seconds = time.perf_counter() - started
    shown = f"accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}"
    if metrics.get("roc_auc") is not None:
        shown += f", ROC-AUC {metrics['roc_auc']:.4f}"
    print(f"   test: {shown}, ECE {metrics['ece']:.4f}")
    print(f"   wrote {version_dir} in {seconds:.1f} s (fit {fit_seconds:.1f} s)", flush=True)
    return TrainOutcome(dataset, recipe.name, version_dir, metrics, seconds)
