"""The drift reference each new version ships: what the training inputs looked like, so the server
can tell when today's inputs no longer do (``service.serving.drift``).

The statistics are built by the server's own functions (``image_reference``,
``record_reference``), so the reference and the rolling window are computed the same way. The
file goes into the version folder before the exporter takes its checksums, and the returned
``drift`` block names it: ``metadata.drift = {"file": "drift_reference.json"}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.serving.drift import REFERENCE_FILE, image_reference, record_reference

PREDICT_BATCH = 2048


def _saved_model_classes(folder: Path, x: np.ndarray) -> np.ndarray | None:
    """The classes the version's exported SavedModel predicts for ``x`` (its argmax); None for a
    folder without one (artifacts written apart from an export), which then ships no
    predicted-class histogram rather than one from another model."""
    if not (folder / "saved_model.pb").is_file():
        return None
    import tensorflow as tf

    model = tf.saved_model.load(str(folder))
    parts = [
        np.asarray(model.serve(tf.constant(x[i : i + PREDICT_BATCH], tf.float32))).argmax(axis=1)
        for i in range(0, len(x), PREDICT_BATCH)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _write(folder: Path, reference: dict[str, Any]) -> dict[str, Any]:
    (folder / REFERENCE_FILE).write_text(json.dumps(reference), encoding="utf-8")
    return {"drift": {"file": REFERENCE_FILE}}


def write_image_reference(folder: Path, images: np.ndarray, classes: int) -> dict[str, Any]:
    """Ink mass, ink box and the predicted-class shares of the training ``images`` (serving
    format, ``[N, side, side]`` in [0, 1]). The classes are the ones the exported model in
    ``folder`` predicts: the model the server will watch, after calibration."""
    x = np.asarray(images, np.float32)
    return _write(folder, image_reference(x, _saved_model_classes(folder, x), classes))


def write_record_reference(folder: Path, rows: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Each feature's percentiles over the training ``rows`` (raw values, columns in ``names``
    order: the names are the record fields the server matches them by)."""
    table = np.asarray(rows, np.float64)
    if table.ndim != 2 or table.shape[1] != len(names):
        raise ValueError(f"drift reference: rows are {list(table.shape)}, names {len(names)}")
    return _write(folder, record_reference(table, list(names)))
