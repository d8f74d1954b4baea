"""The drift reference the trainer ships in each version folder, read back by the server's own
loader: percentiles of the training inputs, the exported model's predicted-class shares, and a
window that alarms on shifted inputs but not on fresh ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import training.recipes
from service.repository.disk import Repository, sha256_file
from service.serving.drift import PREDICTED, DriftWindow, image_features, load_reference
from tests.training.test_trainer import ROWS, SQUARES, TinyRecipe
from training import specs
from training.drift_reference import write_image_reference, write_record_reference


def _listed(folder: Path, block: dict[str, Any]) -> dict[str, Any]:
    """The metadata the exporter would write: the block plus the file and its checksum."""
    name = block["drift"]["file"]
    return {**block, "files": {name: sha256_file(folder / name)}}


def _alarm(window: DriftWindow, features: dict[str, np.ndarray]) -> bool:
    window.add(features)
    return bool(window.report()["alarm"])


def test_record_reference_holds_each_features_percentiles(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(120, 30, 800), rng.gamma(2.0, 3.0, 800)])
    block = write_record_reference(tmp_path, rows, ["glucose", "insulin"])
    assert block == {"drift": {"file": "drift_reference.json"}}
    reference = load_reference(_listed(tmp_path, block), tmp_path)
    assert reference is not None and reference.rows == 800
    by_name = {f.name: f for f in reference.features}
    assert set(by_name) == {"glucose", "insulin"}
    for i, name in enumerate(("glucose", "insulin")):
        q = by_name[name].quantiles
        assert q is not None
        np.testing.assert_allclose(q, np.percentile(rows[:, i], np.arange(101)))

    def window() -> DriftWindow:
        return DriftWindow(reference, size=300, alpha=0.01, min_rows=300)

    fresh = rng.normal(120, 30, 300), rng.gamma(2.0, 3.0, 300)
    assert not _alarm(window(), {"glucose": fresh[0], "insulin": fresh[1]})
    assert _alarm(window(), {"glucose": fresh[0] * 1.25, "insulin": fresh[1]})


def test_record_reference_refuses_rows_that_do_not_match_the_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rows are"):
        write_record_reference(tmp_path, np.zeros((10, 3)), ["a", "b"])


def _stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """12x12 images with a bright column in one of three places; the place is the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 0.1, (n, 12, 12)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, 2:10, 2 + 4 * label] = 1.0
    return x, y


def test_image_reference_uses_the_exported_models_predicted_classes(tmp_path: Path) -> None:
    x, _ = _stripes(300, 1)
    # A fixed, untrained model: its predictions are whatever it says, not the labels.
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((12, 12)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
    )
    model.export(str(tmp_path), format="tf_saved_model", verbose=False)
    block = write_image_reference(tmp_path, x, 3)
    reference = load_reference(_listed(tmp_path, block), tmp_path)
    assert reference is not None and reference.rows == 300
    by_name = {f.name: f for f in reference.features}
    assert set(by_name) == {"ink_mass", "ink_width", "ink_height", PREDICTED}
    predicted = np.asarray(model(x)).argmax(axis=1)
    expected = np.bincount(predicted, minlength=3) / 300
    np.testing.assert_allclose(by_name[PREDICTED].proportions, expected)  # type: ignore[arg-type]
    q = by_name["ink_mass"].quantiles
    assert q is not None
    np.testing.assert_allclose(q, np.percentile(image_features(x)["ink_mass"], np.arange(101)))


def test_image_reference_without_an_exported_model_has_no_class_histogram(
    tmp_path: Path,
) -> None:
    x, _ = _stripes(100, 2)
    block = write_image_reference(tmp_path, x, 3)
    reference = load_reference(_listed(tmp_path, block), tmp_path)
    assert reference is not None
    assert {f.name for f in reference.features} == {"ink_mass", "ink_width", "ink_height"}


@pytest.mark.parametrize("spec", [SQUARES, ROWS], ids=["images", "records"])
def test_every_new_version_ships_a_checksummed_drift_reference(
    spec: specs.DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.recipes import recipe_names
    from training.trainer import train_and_export

    recipe_names()
    monkeypatch.setitem(specs.SPECS, spec.name, spec)
    monkeypatch.setitem(training.recipes._REGISTRY, (spec.name, "tiny"), TinyRecipe(spec))
    outcome = train_and_export(spec.name, "tiny", models_dir=tmp_path, verbose=0, tflite=False)
    meta = json.loads((outcome.version_dir / "metadata.json").read_text())
    assert meta["drift"] == {"file": "drift_reference.json"}
    assert "drift_reference.json" in meta["files"]
    Repository(tmp_path).verify_files(spec.name, 1, meta)  # the server's checksum check
    reference = load_reference(meta, outcome.version_dir)
    assert reference is not None
    names = {f.name for f in reference.features}
    if isinstance(spec, specs.BinaryClassificationSpec):
        assert names == set(spec.feature_names)
        assert reference.rows == meta["training"]["train_examples"]
    else:
        assert names == {"ink_mass", "ink_width", "ink_height", PREDICTED}
