"""Export parity and the model repository's rules (versions only grow, metadata written last)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import export, interrupts
from training.export import export_version, file_checksums, is_finished, next_version

REQUIRED_KEYS = {
    "format_version", "name", "version", "task", "description", "labels", "input", "output",
    "threshold", "metrics", "recipe", "training", "data", "files", "artifacts", "golden",
    "libraries", "created_at",
}  # fmt: skip


def _caller_metadata(labels: list[str]) -> dict[str, Any]:
    return {
        "task": "image_classification",
        "description": "tiny test model",
        "labels": labels,
        "input": {
            "name": "pixels",
            "shape": [28, 28],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "framing": "digit",
            "side": 28,
        },
        "output": {"name": "probabilities", "kind": "softmax", "shape": [len(labels)]},
        "threshold": None,
        "metrics": {"accuracy": np.float32(0.5)},  # numpy scalars must serialise
        "recipe": {"name": "test", "hyperparameters": {}, "seed": 1},
        "training": {"seconds": 0.0, "epochs_run": 0, "history": {}},
        "data": {"source": "random", "sha256": {}},
    }


def image_model(logits: bool) -> keras.Model:
    """A random image classifier; with ``logits`` a softmax is attached as the tutorial does."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((28, 28), name="pixels")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    if logits:
        outputs = keras.layers.Softmax()(keras.layers.Dense(10)(hidden))
    else:
        outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    return keras.Model(inputs, outputs)


def pima_model() -> keras.Model:
    keras.utils.set_random_seed(8)
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))


def tflite_predict(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape), strict=False)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def _export(model: keras.Model, models_dir: Path, x: np.ndarray, **kwargs: Any) -> Path:
    return export_version(
        model,
        models_dir=models_dir,
        name="m",
        metadata=_caller_metadata([str(i) for i in range(10)]),
        golden_inputs=x[:4],
        parity_inputs=x,
        **kwargs,
    )


@pytest.mark.parametrize("logits", [False, True], ids=["softmax", "logits+softmax"])
def test_saved_model_and_tflite_match_in_memory_model(tmp_path: Path, logits: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28), dtype=np.float32)
    model = image_model(logits)
    version_dir = _export(model, tmp_path, x)
    fresh = rng.random((32, 28, 28), dtype=np.float32)  # inputs the exporter never saw
    expected = np.asarray(model(fresh, training=False))

    loaded = tf.saved_model.load(str(version_dir))
    from_saved = np.asarray(loaded.serve(tf.constant(fresh)))
    np.testing.assert_allclose(from_saved, expected, atol=1e-6)
    np.testing.assert_allclose(from_saved.sum(axis=1), 1.0, atol=1e-5)
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["pixels"]

    meta = json.loads((version_dir / "metadata.json").read_text())
    assert meta["artifacts"]["tflite"] == "model.tflite"
    assert meta["artifacts"]["tflite_parity"]["n"] == len(x)
    from_tflite = tflite_predict(version_dir / "model.tflite", fresh)
    np.testing.assert_allclose(from_tflite, expected, atol=1e-5)


def test_pima_sigmoid_model_round_trips(tmp_path: Path) -> None:
    x = np.random.default_rng(1).uniform(0, 200, (40, 8)).astype(np.float32)
    model = pima_model()
    version_dir = _export(model, tmp_path, x)
    loaded = tf.saved_model.load(str(version_dir))
    np.testing.assert_allclose(
        np.asarray(loaded.serve(tf.constant(x))), np.asarray(model(x)), atol=1e-6
    )
    meta = json.loads((version_dir / "metadata.json").read_text())
    assert np.asarray(meta["golden"]["outputs"]).shape == (4, 1)


def test_metadata_is_complete_and_consistent(tmp_path: Path) -> None:
    x = np.random.default_rng(2).random((16, 28, 28), dtype=np.float32)
    seen: list[bool] = []

    def report(report_dir: Path) -> None:
        seen.append((report_dir.parent / "metadata.json").exists())
        (report_dir / "report.md").write_text("# report\n")

    model = image_model(logits=False)
    version_dir = _export(model, tmp_path, x, write_report=report)
    assert seen == [False], "metadata.json must be written after the report"
    meta = json.loads((version_dir / "metadata.json").read_text())
    assert set(meta) >= REQUIRED_KEYS
    assert (meta["name"], meta["version"], meta["format_version"]) == ("m", 1, 2)
    assert meta["input"]["framing"] == "digit" and meta["input"]["side"] == 28
    assert meta["metrics"]["accuracy"] == pytest.approx(0.5)
    assert meta["files"] == file_checksums(version_dir)
    assert {"saved_model.pb", "model.tflite", "report/report.md"} <= set(meta["files"])
    assert "metadata.json" not in meta["files"]
    assert {"python", "tensorflow", "keras", "numpy"} <= set(meta["libraries"])
    golden = meta["golden"]
    np.testing.assert_allclose(
        np.asarray(model(np.asarray(golden["inputs"], np.float32))),
        np.asarray(golden["outputs"]),
        atol=golden["atol"],
    )
    assert not list(version_dir.glob(".metadata*")), "no temp file left behind"


def test_failed_tflite_parity_drops_the_tflite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "TFLITE_MAX_ABS_DIFF", -1.0)  # no result can pass
    x = np.random.default_rng(3).random((8, 28, 28), dtype=np.float32)
    version_dir = _export(image_model(logits=False), tmp_path, x)
    meta = json.loads((version_dir / "metadata.json").read_text())
    assert meta["artifacts"]["tflite"] is None
    assert "parity" in meta["artifacts"]["tflite_error"]
    assert not (version_dir / "model.tflite").exists()
    assert "model.tflite" not in meta["files"]


def test_versions_only_grow(tmp_path: Path) -> None:
    assert next_version(tmp_path, "m") == 1
    x = np.random.default_rng(4).random((4, 28, 28), dtype=np.float32)
    model = image_model(logits=False)
    first = _export(model, tmp_path, x, tflite=False)
    assert first.name == "1" and is_finished(first)
    (tmp_path / "m" / "2").mkdir()  # an unfinished version (say, a crashed run)
    (tmp_path / "m" / "latest").mkdir()  # not a version number: ignored
    assert not is_finished(tmp_path / "m" / "2")
    assert next_version(tmp_path, "m") == 3
    before = (first / "metadata.json").read_bytes()
    second = _export(model, tmp_path, x, tflite=False)
    assert second.name == "3"
    assert (first / "metadata.json").read_bytes() == before, "version 1 was rewritten"


def test_a_failed_or_interrupted_export_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.random.default_rng(5).random((4, 28, 28), dtype=np.float32)
    model = image_model(logits=False)

    def fail(path: Path) -> None:
        raise RuntimeError("the report could not be written")

    with pytest.raises(RuntimeError):
        _export(model, tmp_path, x, tflite=False, write_report=fail)
    assert list((tmp_path / "m").iterdir()) == []
    # a Ctrl-C that TensorFlow swallowed in a callback: the flag still stops the publication
    monkeypatch.setattr(interrupts, "_received", signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        _export(model, tmp_path, x, tflite=False)
    assert list((tmp_path / "m").iterdir()) == []
    monkeypatch.setattr(interrupts, "_received", None)
    assert _export(model, tmp_path, x, tflite=False).name == "1"  # the number was never used
