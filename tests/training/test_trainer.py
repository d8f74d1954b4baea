"""Trainer end to end on small real subsets, the CLI, and the metric functions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training.__main__ import has_finished_version, main
from training.metrics import classification_metrics, expected_calibration_error
from training.specs import PIMA_FEATURE_NAMES

SUBSET = 512


def _require_data(dataset: str) -> None:
    from training.data.errors import DataUnavailable
    from training.trainer import load_dataset

    try:
        load_dataset(dataset, subset=8)
    except DataUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"real data not available: {exc}")


@pytest.mark.training
def test_mnist_end_to_end(tmp_path: Path) -> None:
    _require_data("mnist")
    from training.trainer import load_dataset, train_and_export

    outcome = train_and_export(
        "mnist", models_dir=tmp_path, subset=SUBSET, epochs=1, verbose=0, tflite=False
    )
    assert outcome.version_dir == tmp_path / "mnist" / "1"
    meta = json.loads((outcome.version_dir / "metadata.json").read_text())
    assert meta["recipe"]["name"] == "tutorial" and meta["recipe"]["hyperparameters"]["epochs"] == 1
    assert meta["labels"] == [str(d) for d in range(10)]
    assert meta["input"]["range"] == [0.0, 1.0] and meta["output"]["kind"] == "softmax"
    assert set(meta["data"]["sha256"]) >= {"t10k-images-idx3-ubyte"}
    for plot in ("history.png", "confusion_matrix.png", "samples.png", "report.md"):
        assert (outcome.version_dir / "report" / plot).stat().st_size > 0
    assert "accuracy" in (outcome.version_dir / "report" / "report.md").read_text()

    # The recorded accuracy is what the exported SavedModel scores on the same test subset.
    split = load_dataset("mnist", subset=SUBSET).split
    loaded = tf.saved_model.load(str(outcome.version_dir))
    probs = np.asarray(loaded.serve(tf.constant(split.x_test)))
    assert meta["metrics"]["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == split.y_test))
    assert np.asarray(meta["metrics"]["confusion_matrix"]).sum() == SUBSET


@pytest.mark.training
def test_pima_cli_and_if_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _require_data("pima")
    args = ["pima", "--models-dir", str(tmp_path), "--epochs", "2", "--quiet", "--no-tflite"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ROC-AUC" in out and "total wall time" in out
    version_dir = tmp_path / "pima" / "1"
    meta = json.loads((version_dir / "metadata.json").read_text())
    assert meta["training"]["train_examples"] == 614 and meta["training"]["test_examples"] == 154
    assert 0.0 <= meta["metrics"]["roc_auc"] <= 1.0
    assert meta["threshold"] == 0.5 and meta["labels"] == ["no diabetes", "diabetes"]
    features = meta["input"]["features"]
    assert [f["name"] for f in features] == list(PIMA_FEATURE_NAMES)
    glucose = features[1]
    assert glucose["missing_if_zero"] and glucose["typical"] == [44.0, 199.0]
    assert (version_dir / "report" / "roc.png").exists()
    assert not (version_dir / "report" / "samples.png").exists()

    assert has_finished_version(tmp_path, "pima", "tutorial")
    assert not has_finished_version(tmp_path, "pima", "best")
    assert main([*args, "--if-missing"]) == 0
    assert sorted(p.name for p in (tmp_path / "pima").iterdir()) == ["1"]


def test_metrics_on_known_predictions() -> None:
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = classification_metrics(y, probs, ["a", "b"])
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
    assert m["per_class"]["b"] == {"precision": 1.0, "recall": 0.5}
    assert m["roc_auc"] == 1.0  # every positive scores above every negative
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.4, 0.7]))
    assert m["loss"] == pytest.approx(expected_loss)


def test_sigmoid_column_and_calibration() -> None:
    y = np.array([1, 0, 1, 1])
    p = np.array([[0.8], [0.3], [0.6], [0.4]])
    m = classification_metrics(y, p, ["no", "yes"])
    assert m["accuracy"] == 0.75
    # confident and always right: ECE 0; confident 0.9 but right half the time: ECE 0.4
    assert expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]])) == 0
    half = expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.9, 0.1]]))
    assert half == pytest.approx(0.4)
