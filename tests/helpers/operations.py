"""Drift references for the tests: written into a copy of a version folder as the trainer would
(``metadata.drift.file``, listed with its SHA-256 in ``metadata.files``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from service.serving.drift import image_features

REFERENCE_FILE = "drift_reference.json"


def continuous(values: np.ndarray) -> dict[str, object]:
    return {"kind": "continuous", "quantiles": np.percentile(values, np.arange(101)).tolist()}


def categorical(classes: np.ndarray, k: int) -> dict[str, object]:
    counts = np.bincount(classes.astype(np.int64), minlength=k).astype(np.float64)
    return {"kind": "categorical", "proportions": (counts / counts.sum()).tolist()}


def image_reference(images: np.ndarray, predicted: np.ndarray, k: int = 10) -> dict[str, object]:
    feats = image_features(images.astype(np.float32))
    features: dict[str, object] = {name: continuous(v) for name, v in feats.items()}
    features["predicted_class"] = categorical(predicted, k)
    return {"format": 1, "rows": len(images), "features": features}


def record_reference(
    rows: np.ndarray, names: list[str], predicted: np.ndarray | None = None
) -> dict[str, object]:
    features: dict[str, object] = {n: continuous(rows[:, i]) for i, n in enumerate(names)}
    if predicted is not None:
        features["predicted_class"] = categorical(predicted, 2)
    return {"format": 1, "rows": len(rows), "features": features}


def write_reference(version_dir: Path, reference: dict[str, object]) -> None:
    """Add the reference file and its metadata entry (metadata.json last, as the exporter)."""
    data = json.dumps(reference).encode()
    (version_dir / REFERENCE_FILE).write_bytes(data)
    meta_path = version_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["files"][REFERENCE_FILE] = hashlib.sha256(data).hexdigest()
    meta["drift"] = {"file": REFERENCE_FILE}
    meta_path.write_text(json.dumps(meta))
