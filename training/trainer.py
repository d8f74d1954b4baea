"""Fit a recipe on a data set, evaluate it on the real test set and export a new version."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import keras
import numpy as np
import tensorflow as tf
from sklearn.model_selection import train_test_split

from training import specs
from training.export import export_version
from training.metrics import classification_metrics
from training.recipes import Split, get_recipe
from training.report import ReportData, write_report

SEED = 42
PIMA_TEST_SIZE = 0.2
PIMA_SPLIT_SEED = 42  # the tutorial's random_state
GOLDEN_COUNT = 8
PREDICT_BATCH = 2048


@dataclass
class Dataset:
    """A prepared split plus what the metadata needs about its origin."""

    split: Split
    source: str
    sha256: dict[str, str]
    test_images: np.ndarray | None  # uint8 test images for the samples plot
    pima_features: np.ndarray | None  # the full Pima table, for the typical feature ranges


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


def _subset(x: np.ndarray, n: int | None) -> np.ndarray:
    return x if n is None else x[:n]


def load_dataset(
    dataset: str,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    subset: int | None = None,
) -> Dataset:
    """Load a data set through ``training.datasets`` and prepare it for the recipes.

    Images are divided by 255 here, once, into float32 ``[0, 1]`` (the serving input). Pima is
    split as the tutorial does: stratified, 20 % test, ``random_state=42``.
    ``subset`` keeps the first N training and test examples (smoke runs only).
    """
    from training import datasets

    labels = specs.LABELS[dataset]
    if dataset in specs.IMAGE_DATASETS:
        img = datasets.load_images(cast(Any, dataset), data_dir=data_dir, cache_dir=cache_dir)
        x_test_raw = _subset(img.x_test, subset)
        split = Split(
            dataset=dataset,
            x_train=(_subset(img.x_train, subset) / 255.0).astype(np.float32),
            y_train=_subset(img.y_train, subset).astype(np.int64),
            x_test=(x_test_raw / 255.0).astype(np.float32),
            y_test=_subset(img.y_test, subset).astype(np.int64),
            labels=labels,
        )
        return Dataset(split, img.source, dict(img.sha256), x_test_raw, None)
    if dataset != "pima":
        raise KeyError(f"unknown data set {dataset!r} (known: {', '.join(specs.DATASETS)})")
    pima = datasets.load_pima(data_dir=data_dir, cache_dir=cache_dir)
    x_train, x_test, y_train, y_test = train_test_split(
        pima.features,
        pima.outcome,
        test_size=PIMA_TEST_SIZE,
        stratify=pima.outcome,
        random_state=PIMA_SPLIT_SEED,
    )
    split = Split(
        dataset="pima",
        x_train=_subset(x_train, subset).astype(np.float32),
        y_train=_subset(y_train, subset).astype(np.int64),
        x_test=_subset(x_test, subset).astype(np.float32),
        y_test=_subset(y_test, subset).astype(np.int64),
        labels=labels,
    )
    return Dataset(split, pima.source, dict(pima.sha256), None, np.asarray(pima.features))


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
    data: Dataset | None = None,
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
    recipe = get_recipe(dataset, recipe_name)
    if data is None:
        data = load_dataset(dataset, data_dir=data_dir, cache_dir=cache_dir, subset=subset)
    split = data.split
    hp = recipe.hyperparameters(epochs)
    print(f"== {dataset} / {recipe.name}: {recipe.description}", flush=True)
    print(f"   train {split.x_train.shape}, test {split.x_test.shape}, data: {data.source}")

    seed_everything(seed)
    fit_started = time.perf_counter()
    result = recipe.train(split, hp, verbose=verbose)
    fit_seconds = time.perf_counter() - fit_started

    probs = predict_probabilities(result.serving_model, split.x_test)
    threshold = specs.PIMA_THRESHOLD if dataset == "pima" else 0.5
    if dataset == "pima" and result.threshold is not None:
        threshold = result.threshold
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
        description=specs.DESCRIPTIONS[dataset],
        labels=split.labels,
        recipe=recipe_meta,
        training=training_meta,
        metrics=metrics,
        data_source=data.source,
        y_test=split.y_test,
        probs=probs,
        images=data.test_images,
        threshold=threshold,
    )
    metadata = {
        "task": specs.task(dataset),
        "description": specs.DESCRIPTIONS[dataset],
        "labels": split.labels,
        "input": specs.input_spec(dataset, data.pima_features),
        "output": specs.output_spec(dataset),
        "threshold": threshold if dataset == "pima" else None,
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
        golden_inputs=split.x_test[:GOLDEN_COUNT],
        parity_inputs=split.x_test,
        write_report=lambda path: write_report(path, report),
        tflite=tflite,
    )
    seconds = time.perf_counter() - started
    shown = f"accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}"
    if metrics.get("roc_auc") is not None:
        shown += f", ROC-AUC {metrics['roc_auc']:.4f}"
    print(f"   test: {shown}, ECE {metrics['ece']:.4f}")
    print(f"   wrote {version_dir} in {seconds:.1f} s (fit {fit_seconds:.1f} s)", flush=True)
    return TrainOutcome(dataset, recipe.name, version_dir, metrics, seconds)
