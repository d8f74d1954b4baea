"""What the data-set descriptors write beside the model for the service: the OOD model of an
image version, the explanation background of a tabular one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.serving import ood
from training.specs import Split, get_spec


def _bars(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((n, 28, 28), np.float32)
    y = rng.integers(0, 2, n)
    for i, label in enumerate(y):
        at = int(rng.integers(8, 20))
        if label:
            x[i, 4:24, at] = 1.0
        else:
            x[i, at, 4:24] = 1.0
    return np.clip(x + rng.normal(0, 0.05, x.shape).astype(np.float32), 0, 1), y


def test_image_versions_ship_an_ood_model_with_its_threshold(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = _bars(rng, 600)
    xt, yt = _bars(rng, 200)
    split = Split("mnist", x, y, xt, yt, ["0", "1"])
    block = get_spec("mnist").write_artifacts(split, tmp_path)["ood"]
    assert block["method"] == ood.METHOD and (tmp_path / block["file"]).is_file()
    meta = {"ood": block, "files": {block["file"]: "listed"}}
    model = ood.OodModel.from_metadata(meta, tmp_path)
    assert model is not None and model.threshold == block["threshold"]
    assert model.flags(model.input_scores(xt)).mean() < 0.1  # fresh images of the same kind
    noise = rng.random((50, 28, 28)).astype(np.float32)
    assert model.flags(model.input_scores(noise)).all()
    assert block["fitted_on"] == 540 and 0 <= block["test_flagged"] < 0.1


def test_tabular_versions_ship_a_background_sample_of_training_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.random((100, 8)).astype(np.float32) * 50
    split = Split("pima", x, rng.integers(0, 2, 100), x[:10], np.zeros(10, int), ["no", "yes"])
    block = get_spec("pima").write_artifacts(split, tmp_path)["explain"]["background"]
    rows = np.load(tmp_path / block["file"])
    assert rows.shape == (32, 8) and rows.dtype == np.float32 and block["rows"] == 32
    assert all(any(np.array_equal(row, r) for r in x) for row in rows)  # real training rows
    (tmp_path / "again").mkdir()
    again = get_spec("pima").write_artifacts(split, tmp_path / "again")["explain"]["background"]
    assert np.array_equal(np.load(tmp_path / "again" / again["file"]), rows)  # seeded
