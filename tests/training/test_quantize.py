"""Post-training quantisation: which version it starts from, the accuracy check, and the
conformal scores and calibration summaries measured on the quantised model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.serving import conformal
from training import calibration, quantize
from training.trainer import CONFORMAL_ALPHAS, CONFORMAL_FILE


def _version(models_dir: Path, name: str, version: int, recipe: str | None) -> None:
    folder = models_dir / name / str(version)
    folder.mkdir(parents=True)
    if recipe is not None:  # None: an unfinished version, without metadata.json
        meta = {"version": version, "recipe": {"name": recipe}}
        (folder / "metadata.json").write_text(json.dumps(meta))


def test_newest_version_of_a_recipe(tmp_path: Path) -> None:
    _version(tmp_path, "mnist", 1, "tutorial")
    _version(tmp_path, "mnist", 2, "best")
    _version(tmp_path, "mnist", 3, "best+dynamic")
    _version(tmp_path, "mnist", 4, "best")
    _version(tmp_path, "mnist", 5, None)
    assert quantize.newest_version(tmp_path, "mnist", "best") == 4
    assert quantize.newest_version(tmp_path, "mnist", "tutorial") == 1
    with pytest.raises(FileNotFoundError, match="recipe 'other'"):
        quantize.newest_version(tmp_path, "mnist", "other")
    # a backup copy, a zero-padded folder and a broken metadata.json are not versions
    shutil.copytree(tmp_path / "mnist" / "4", tmp_path / "mnist" / "9.bak")
    shutil.copytree(tmp_path / "mnist" / "4", tmp_path / "mnist" / "09")
    _version(tmp_path, "mnist", 8, "best")
    (tmp_path / "mnist" / "8" / "metadata.json").write_text("{broken")
    assert quantize.newest_version(tmp_path, "mnist", "best") == 4


def test_image_models_are_the_image_data_sets() -> None:
    assert quantize.image_models() == ["mnist", "fashion_mnist"]


@pytest.mark.parametrize(
    ("source", "quantised", "passed"),
    [(0.996, 0.996, True), (0.996, 0.9945, True), (0.996, 0.9935, False), (0.93, 0.94, True)],
)
def test_accuracy_check(source: float, quantised: float, passed: bool) -> None:
    check = quantize._accuracy_check(source, {"accuracy": quantised}, max_drop=0.002)
    assert check["passed"] is passed
    assert check["change"] == pytest.approx(quantised - source)


def _probs(y: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Softmax rows over 3 classes with ``confidence`` on the true label."""
    probs = np.repeat(((1 - confidence) / 2)[:, None], 3, axis=1)
    probs[np.arange(len(y)), y] = confidence
    return probs.astype(np.float32)


def test_conformal_scores_and_calibration_come_from_the_quantised_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_cal, y_test = rng.integers(0, 3, 200), rng.integers(0, 3, 100)
    x_cal = rng.random((200, 4), dtype=np.float32)
    p_cal = _probs(y_cal, rng.uniform(0.4, 1.0, 200))
    p_test = _probs(y_test, rng.uniform(0.4, 1.0, 100))
    # the "quantised model": a lookup of the calibration rows' probabilities
    rows = {x.tobytes(): p for x, p in zip(x_cal, p_cal, strict=True)}

    def run(x: np.ndarray) -> np.ndarray:
        return np.stack([rows[row.tobytes()] for row in np.asarray(x, np.float32)])

    source: dict[str, Any] = {
        "version": 2,
        "conformal": {"method": "lac", "file": CONFORMAL_FILE, "n": 7, "test": []},
        "calibration": {
            "method": "temperature",
            "params": {"temperature": 1.3},
            "after": {"ece": 9.0},
            "calibration_split": {"before": {"ece": 8.0}, "after": {"ece": 9.0}},
        },
    }
    blocks = quantize._remeasure_trust(source, tmp_path, run, x_cal, y_cal, y_test, p_test, 0.5)

    saved = np.load(tmp_path / CONFORMAL_FILE)
    np.testing.assert_array_equal(saved, conformal.scores(p_cal, y_cal))
    block = blocks["conformal"]
    assert block["n"] == 200 and block["method"] == "lac"
    assert [t["alpha"] for t in block["test"]] == list(CONFORMAL_ALPHAS)
    assert all(t["examples"] == 100 for t in block["test"])

    cal = blocks["calibration"]
    assert cal["params"] == {"temperature": 1.3}  # fitted on the float model, inside the graph
    assert cal["after"] == {**calibration.summary(y_test, p_test), "accuracy": 0.5}
    assert cal["calibration_split"]["after"] == calibration.summary(y_cal, p_cal)
    assert cal["calibration_split"]["before"] == {"ece": 8.0}


def test_a_source_with_a_margin_gets_its_alpha_rechosen_on_the_quantised_model(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    y_cal, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 100)
    x_cal = rng.random((300, 4), dtype=np.float32)
    p_cal = _probs(y_cal, rng.uniform(0.3, 1.0, 300))
    p_test = _probs(y_test, rng.uniform(0.3, 1.0, 100))
    rows = {x.tobytes(): p for x, p in zip(x_cal, p_cal, strict=True)}

    def run(x: np.ndarray) -> np.ndarray:
        return np.stack([rows[row.tobytes()] for row in np.asarray(x, np.float32)])

    source: dict[str, Any] = {
        "version": 2,
        "conformal": {"method": "lac", "alpha": 0.5, "delta": 0.1, "calibration_split": []},
    }
    block = quantize._remeasure_trust(source, tmp_path, run, x_cal, y_cal, y_test, p_test, 0.5)[
        "conformal"
    ]
    scores = conformal.scores(p_cal, y_cal)
    alpha, figures = conformal.choose_alpha(scores, p_cal, 0.1)
    assert block["alpha"] == alpha != 0.5 and block["calibration_split"] == figures
    expected = [
        conformal.set_figures(scores, p_test, a, 0.1, labels=y_test) for a in CONFORMAL_ALPHAS
    ]
    assert block["test"] == expected


def test_a_version_without_conformal_or_calibration_gets_neither(tmp_path: Path) -> None:
    def run(x: np.ndarray) -> np.ndarray:
        raise AssertionError("nothing to measure")

    y = np.zeros(3, np.int64)
    x = np.zeros((3, 2), np.float32)
    assert quantize._remeasure_trust({}, tmp_path, run, x, y, y, x, 1.0) == {}
    assert not (tmp_path / CONFORMAL_FILE).exists()


def test_cli_reports_a_missing_source_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["all", "--from-recipe", "best", "--mode", "dynamic", "--models-dir", str(tmp_path)]
    assert quantize.main(args) == 1
    err = capsys.readouterr().err
    assert "no finished mnist version" in err and "no finished fashion_mnist version" in err


def test_drift_reference_holds_the_quantised_models_classes(tmp_path: Path) -> None:
    from service.serving.drift import REFERENCE_FILE, image_reference

    rng = np.random.default_rng(1)
    x = rng.random((50, 28, 28), dtype=np.float32)

    def run(batch: np.ndarray) -> np.ndarray:  # predicts class 2 for every image
        return np.tile(np.array([0.1, 0.2, 0.7], np.float32), (len(batch), 1))

    meta = {"task": "image_classification", "labels": ["a", "b", "c"], "drift": {"file": "x"}}
    quantize._rewrite_drift_reference(meta, tmp_path, run, x)
    written = json.loads((tmp_path / REFERENCE_FILE).read_text())
    assert written == json.loads(json.dumps(image_reference(x, np.full(50, 2), 3)))
    assert written != json.loads(json.dumps(image_reference(x, np.zeros(50, np.int64), 3)))

    table = {"task": "binary_classification", "drift": {"file": "x"}}
    quantize._rewrite_drift_reference(table, tmp_path / "none", run, x)  # nothing written
    assert not (tmp_path / "none").exists()


@pytest.mark.training
def test_a_quantised_version_loads_and_carries_its_own_report(tmp_path: Path) -> None:
    """End to end on real data: a tutorial version trained for one epoch, quantised; the new
    version passes the repository's checks (every file listed and checksummed, the report
    included), its recorded accuracy is its own file's, and its report is its own."""
    from training.data.errors import DataUnavailable
    from training.trainer import load_dataset, train_and_export

    try:
        load_dataset("mnist", subset=8)
    except DataUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"real data not available: {exc}")
    train_and_export("mnist", models_dir=tmp_path, subset=512, epochs=1, verbose=0)
    # the gate compares the copy with its source measured on the same test images, not with the
    # source's recorded figure (made unreachable here); and only on the data it was trained on
    source_meta = tmp_path / "mnist" / "1" / "metadata.json"
    recorded = json.loads(source_meta.read_text())
    source_meta.write_text(json.dumps({**recorded, "metrics": {"accuracy": 1.0}}))
    with pytest.raises(quantize.SourceMismatch, match="quantise it with the subset"):
        quantize.quantize_version(tmp_path, "mnist", 1, "dynamic")  # the full data set
    assert not (tmp_path / "mnist" / "2").exists()
    target = quantize.quantize_version(
        tmp_path, "mnist", 1, "dynamic", max_accuracy_drop=0.05, subset=512
    )
    source_meta.write_text(json.dumps(recorded))

    assert target == tmp_path / "mnist" / "2"
    meta = json.loads((target / "metadata.json").read_text())
    assert meta["recipe"]["name"] == "tutorial+dynamic" and meta["recipe"]["from_version"] == 1
    for name in ("report.md", "confusion_matrix.png", "history.png", "samples.png"):
        assert f"report/{name}" in meta["files"]
    report = (target / "report" / "report.md").read_text()
    assert "dynamic-quantised copy of version 1" in report
    # the density model is the source's; whether its score weighs doubt is this file's own
    source = json.loads((tmp_path / "mnist" / "1" / "metadata.json").read_text())
    assert {k: v for k, v in meta["ood"].items() if k != "confidence"} == {
        k: v for k, v in source["ood"].items() if k != "confidence"
    }
    assert isinstance(meta["ood"]["confidence"]["weighed"], bool)
    matrix = np.asarray(meta["metrics"]["confusion_matrix"])
    assert np.trace(matrix) / matrix.sum() == pytest.approx(meta["metrics"]["accuracy"])
    check = meta["metrics"]["quantisation_check"]
    assert check["passed"] and check["source_accuracy"] < 0.99
    assert "on the same test images" in check["source_accuracy_from"]
    assert meta["training"]["test_examples"] == matrix.sum() == 512

    from service.repository.disk import Repository

    repository = Repository(tmp_path)
    checked = repository.read_metadata("mnist", 2)
    repository.verify_files("mnist", 2, checked)  # raises on a missing or changed file


def test_cli_data_that_cannot_be_had_is_exit_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.data.errors import DataUnavailable

    def unavailable(*args: Any, **kwargs: Any) -> Path:
        raise DataUnavailable("mnist", [("a mirror", "offline")], "Name a --data-dir.")

    monkeypatch.setattr(quantize, "quantize_version", unavailable)
    _version(tmp_path, "mnist", 1, "tutorial")
    args = ["mnist", "--from-recipe", "tutorial", "--mode", "dynamic"]
    args += ["--models-dir", str(tmp_path)]
    assert quantize.main(args) == 2
    err = capsys.readouterr().err
    assert "error: Could not load the mnist data set" in err and "Traceback" not in err
