"""The trainer: end to end on synthetic data sets it has never heard of, on small real subsets,
and through the CLI; it reads everything about a data set from its descriptor."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import pytest
import tensorflow as tf

import training
import training.recipes
from training import specs
from training.__main__ import has_finished_version, main, plan
from training.export import FORMAT_VERSION
from training.recipes import FitResult, Recipe, Split, history_lists
from training.specs import (
    PIMA_FEATURE_NAMES,
    BinaryClassificationSpec,
    DatasetSpec,
    FeatureSpec,
    ImageClassificationSpec,
)

SUBSET = 512
TRAINER_MODULES = ("trainer.py", "report.py", "export.py", "metrics.py")


# --- synthetic data sets: a new descriptor, a loader and a recipe, nothing else ---------------


@dataclass(frozen=True)
class Raw:
    """What the loaders return, for both kinds (images or a table)."""

    x_train: np.ndarray = field(default_factory=lambda: np.empty(0))
    y_train: np.ndarray = field(default_factory=lambda: np.empty(0))
    x_test: np.ndarray = field(default_factory=lambda: np.empty(0))
    y_test: np.ndarray = field(default_factory=lambda: np.empty(0))
    features: np.ndarray = field(default_factory=lambda: np.empty(0))
    outcome: np.ndarray = field(default_factory=lambda: np.empty(0))
    source: str = "synthetic"
    sha256: dict[str, str] = field(default_factory=lambda: {"synthetic": "0" * 64})


def _squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """12x12 uint8 images with a bright square in one of three places; the place is the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 40, (n, 12, 12)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 2:6, 1 + 4 * label : 4 + 4 * label] = 255
    return x, y.astype(np.uint8)


def load_squares(**_: Any) -> Raw:
    (x_train, y_train), (x_test, y_test) = _squares(90, 0), _squares(30, 1)
    return Raw(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def load_rows(**_: Any) -> Raw:
    rng = np.random.default_rng(2)
    features = np.column_stack([rng.uniform(1, 9, 100), rng.uniform(0, 5, 100)])
    features[:10, 1] = 0.0  # "not measured": left out of the typical range
    outcome = (features[:, 0] > 5).astype(np.int64)
    return Raw(features=features, outcome=outcome)


SQUARES = ImageClassificationSpec(
    name="squares",
    description="Synthetic squares",
    labels=("left", "middle", "right"),
    loader=load_squares,
    framing="item",
    side=12,
)
ROWS = BinaryClassificationSpec(
    name="rows",
    description="Synthetic rows",
    labels=("low", "high"),
    loader=load_rows,
    features=(
        FeatureSpec("size", "cm", "A size", 0, 10),
        FeatureSpec("dose", "mg", "A dose", 0, 50, missing_if_zero=True),
    ),
    test_size=0.2,
    split_seed=0,
    default_threshold=0.4,
)


class TinyRecipe(Recipe):
    """A linear softmax or sigmoid layer, one epoch."""

    name = "tiny"
    dataset = "any"
    defaults: ClassVar[dict[str, Any]] = {"epochs": 1}

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec

    def build(self, hp: dict[str, Any]) -> keras.Model:
        outputs = self.spec.output_spec()["shape"][0]
        activation = "softmax" if outputs > 1 else "sigmoid"
        loss = "sparse_categorical_crossentropy" if outputs > 1 else "binary_crossentropy"
        model = keras.Sequential(
            [keras.layers.Flatten(), keras.layers.Dense(outputs, activation=activation)]
        )
        model.compile(optimizer="adam", loss=loss)
        return model

    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        history = model.fit(split.x_train, split.y_train, epochs=hp["epochs"], verbose=verbose)
        return FitResult(model, history_lists(history), len(history.epoch))


def _train_synthetic(
    spec: DatasetSpec, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, Any]]:
    from training.recipes import recipe_names
    from training.trainer import train_and_export

    recipe_names()  # the real recipes first, so the synthetic one is only added
    monkeypatch.setitem(specs.SPECS, spec.name, spec)
    monkeypatch.setitem(training.recipes._REGISTRY, (spec.name, "tiny"), TinyRecipe(spec))
    outcome = train_and_export(spec.name, "tiny", models_dir=models_dir, verbose=0, tflite=False)
    assert outcome.version_dir == models_dir / spec.name / "1"
    meta: dict[str, Any] = json.loads((outcome.version_dir / "metadata.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION == 2
    assert meta["name"] == spec.name and meta["description"] == spec.description
    assert meta["task"] == spec.task and meta["labels"] == list(spec.labels)
    assert meta["recipe"]["name"] == "tiny" and meta["data"]["source"] == "synthetic"
    return outcome.version_dir, meta


def test_a_new_image_data_set_needs_only_a_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_dir, meta = _train_synthetic(SQUARES, tmp_path, monkeypatch)
    assert meta["task"] == "image_classification"
    assert meta["input"] == {
        "name": "pixels",
        "shape": [12, 12],
        "dtype": "float32",
        "range": [0.0, 1.0],
        "features": None,
        "framing": "item",
        "side": 12,
    }
    assert meta["output"] == {"name": "probabilities", "kind": "softmax", "shape": [3]}
    assert meta["threshold"] is None and meta["metrics"]["roc_auc"] is None
    golden = np.asarray(meta["golden"]["inputs"])
    assert golden.shape == (8, 12, 12) and golden.max() <= 1.0  # scaled once, by the descriptor
    assert np.asarray(meta["golden"]["outputs"]).shape == (8, 3)
    # A tenth of the 90 training images is the calibration split, never trained on.
    assert meta["training"]["train_examples"] == 81 and meta["training"]["test_examples"] == 30
    assert meta["training"]["calibration_examples"] == 9
    assert meta["calibration"]["method"] == "temperature"
    assert meta["calibration"]["before"]["accuracy"] == meta["calibration"]["after"]["accuracy"]
    assert meta["conformal"]["n"] == 9 and "conformal.npy" in meta["files"]
    assert len(np.load(version_dir / "conformal.npy")) == 9
    report = version_dir / "report"
    assert (report / "samples.png").exists() and not (report / "roc.png").exists()
    assert (report / "reliability.png").exists() and "report/reliability.png" in meta["files"]
    assert "decision threshold" not in (report / "report.md").read_text()


def test_a_new_binary_data_set_needs_only_a_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_dir, meta = _train_synthetic(ROWS, tmp_path, monkeypatch)
    assert meta["task"] == "binary_classification"
    assert meta["input"]["name"] == "features" and meta["input"]["shape"] == [2]
    size, dose = meta["input"]["features"]
    assert (size["name"], size["unit"], size["max"]) == ("size", "cm", 10)
    assert dose["missing_if_zero"] and dose["typical"][0] > 0  # zeros are "not measured"
    assert meta["output"] == {"name": "probabilities", "kind": "sigmoid", "shape": [1]}
    # The descriptor's default (the recipe chose none), carried through the Platt calibration.
    cal = meta["calibration"]
    assert cal["method"] == "platt" and cal["threshold"]["before"] == 0.4
    a, b = cal["params"]["a"], cal["params"]["b"]
    assert a > 0
    expected = 1.0 / (1.0 + np.exp(-(a * np.log(0.4 / 0.6) + b)))
    assert meta["threshold"] == pytest.approx(expected)
    assert cal["before"]["accuracy"] == cal["after"]["accuracy"]
    assert meta["metrics"]["roc_auc"] is not None
    assert meta["training"]["train_examples"] == 72 and meta["training"]["test_examples"] == 20
    report = version_dir / "report"
    assert (report / "roc.png").exists() and not (report / "samples.png").exists()
    assert f"| decision threshold | {meta['threshold']:.4f} |" in (report / "report.md").read_text()


def test_trainer_report_and_exporter_never_name_a_data_set() -> None:
    root = Path(training.__file__).parent
    for module in TRAINER_MODULES:
        source = (root / module).read_text()
        for name in specs.DATASETS:
            assert f'"{name}"' not in source, f"{module} branches on the data set {name!r}"
        assert "IMAGE_DATASETS" not in source and "pima" not in source.lower(), module


# --- the real data sets -----------------------------------------------------------------------


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
    assert meta["format_version"] == 2 and meta["task"] == "image_classification"
    assert (meta["input"]["framing"], meta["input"]["side"]) == ("digit", 28)
    assert set(meta["data"]["sha256"]) >= {"t10k-images-idx3-ubyte"}
    for plot in ("history.png", "confusion_matrix.png", "samples.png", "report.md"):
        assert (outcome.version_dir / "report" / plot).stat().st_size > 0
    assert "accuracy" in (outcome.version_dir / "report" / "report.md").read_text()
    # the OOD block says whether the score weighs this model's doubt, measured on its own outputs
    confidence = meta["ood"]["confidence"]
    assert (
        isinstance(confidence["weighed"], bool)
        and ("threshold" in confidence) is (confidence["weighed"])
    )
    assert set(confidence["auroc_synthetic"]) == {"noise", "near-blank", "single stroke"}

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
    # 123 of the 614 training rows are the calibration split.
    assert meta["training"]["train_examples"] == 491 and meta["training"]["test_examples"] == 154
    assert meta["training"]["subset"] is None
    assert meta["training"]["calibration_examples"] == 123 and meta["conformal"]["n"] == 123
    assert 0.0 <= meta["metrics"]["roc_auc"] <= 1.0
    assert meta["calibration"]["threshold"]["before"] == 0.5
    assert meta["labels"] == ["no diabetes", "diabetes"]
    assert meta["format_version"] == 2 and meta["task"] == "binary_classification"
    assert "framing" not in meta["input"] and meta["output"]["kind"] == "sigmoid"
    features = meta["input"]["features"]
    assert [f["name"] for f in features] == list(PIMA_FEATURE_NAMES)
    glucose = features[1]
    assert glucose["missing_if_zero"] and glucose["typical"] == [44.0, 199.0]
    assert (version_dir / "report" / "roc.png").exists()
    assert not (version_dir / "report" / "samples.png").exists()

    assert has_finished_version(tmp_path, "pima", "tutorial")
    assert not has_finished_version(tmp_path, "pima", "best")
    meta_path = version_dir / "metadata.json"
    real = meta_path.read_text()
    meta["training"]["subset"] = 200  # as if a smoke run had made it
    meta_path.write_text(json.dumps(meta))
    assert not has_finished_version(tmp_path, "pima", "tutorial")  # the real one is still due
    assert has_finished_version(tmp_path, "pima", "tutorial", smoke=True)
    meta_path.write_text(real)
    assert main([*args, "--if-missing"]) == 0
    assert sorted(p.name for p in (tmp_path / "pima").iterdir()) == ["1"]


def test_plan_trains_a_recipe_for_every_data_set_that_has_it() -> None:
    pairs = plan(["mnist", "fashion_mnist", "pima"], "best,fast")
    assert ("pima", "best") in pairs and ("pima", "fast") not in pairs
    assert {("mnist", "fast"), ("fashion_mnist", "fast")} <= set(pairs)
    assert pairs.index(("mnist", "best")) < pairs.index(("mnist", "fast"))


def test_plan_refuses_a_recipe_no_data_set_has() -> None:
    with pytest.raises(SystemExit, match="no data set has a recipe 'fastest'"):
        plan(["mnist", "pima"], "best,fastest")
    with pytest.raises(SystemExit, match="no recipe 'fast' for pima"):
        plan(["pima"], "fast")


def test_plan_names_quantised_copies_and_the_served_defaults() -> None:
    pairs = plan(["mnist", "fashion_mnist", "pima"], "tutorial,defaults")
    assert pairs == [
        ("mnist", "tutorial"),
        ("mnist", "lean"),
        ("mnist", "lean+dynamic"),
        ("fashion_mnist", "tutorial"),
        ("fashion_mnist", "lean"),
        ("fashion_mnist", "lean+dynamic"),
        ("pima", "tutorial"),
        ("pima", "best"),
    ]
    # a step named twice runs once, where it was first named; pima's versions are not quantised
    pairs = plan(["fashion_mnist", "pima"], "lean,lean+dynamic,defaults,best+dynamic")
    assert pairs == [
        ("fashion_mnist", "lean"),
        ("fashion_mnist", "lean+dynamic"),
        ("fashion_mnist", "best+dynamic"),
        ("pima", "best"),
    ]


def test_plan_makes_a_copy_after_training_its_recipe_whatever_the_order() -> None:
    assert plan(["mnist"], "fast+dynamic,fast") == [("mnist", "fast"), ("mnist", "fast+dynamic")]
    assert plan(["mnist"], "fast+dynamic,tutorial,fast+float16,fast") == [
        ("mnist", "fast"),
        ("mnist", "fast+dynamic"),
        ("mnist", "tutorial"),
        ("mnist", "fast+float16"),
    ]
    # without the recipe planned, the copy is made from the newest version already trained
    assert plan(["mnist"], "fast+dynamic,tutorial") == [
        ("mnist", "fast+dynamic"),
        ("mnist", "tutorial"),
    ]


def test_defaults_for_a_data_set_without_a_served_entry_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = {k: v for k, v in training.recipes.SERVED.items() if k != "pima"}
    monkeypatch.setattr(training.recipes, "SERVED", served)
    with pytest.raises(SystemExit, match="no recipe 'defaults' for pima"):
        plan(["pima"], "defaults")
    assert plan(["mnist", "pima"], "defaults") == [("mnist", "lean"), ("mnist", "lean+dynamic")]


def test_every_served_default_is_a_recipe_its_data_set_has() -> None:
    from training.quantize import MODES, image_models

    assert set(training.recipes.SERVED) == set(specs.DATASETS)
    for dataset, served in training.recipes.SERVED.items():
        recipe, plus, mode = served.partition("+")
        assert recipe in training.recipes.recipe_names(dataset)
        if plus:
            assert mode in MODES and dataset in image_models()


def test_plan_refuses_a_quantised_copy_it_cannot_make() -> None:
    with pytest.raises(SystemExit, match="no quantisation mode 'fp8'"):
        plan(["mnist"], "fast+fp8")
    with pytest.raises(SystemExit, match="pima's versions are not quantised"):
        plan(["pima"], "best+dynamic")
    with pytest.raises(SystemExit, match="no data set has a recipe 'quick\\+dynamic'"):
        plan(["mnist", "pima"], "quick+dynamic")


def _finished(models_dir: Path, dataset: str, version: int, recipe: str) -> None:
    folder = models_dir / dataset / str(version)
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps({"recipe": {"name": recipe}}))


def test_cli_quantises_the_newest_version_of_a_recipe_and_skips_what_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.quantize
    import training.trainer

    _finished(tmp_path, "mnist", 1, "lean")
    _finished(tmp_path, "mnist", 2, "tutorial")
    _finished(tmp_path, "mnist", 3, "lean")
    _finished(tmp_path, "fashion_mnist", 1, "lean")
    _finished(tmp_path, "pima", 1, "best")
    trained: list[tuple[str, str]] = []
    quantised: list[tuple[str, int, str]] = []

    def fake_train(dataset: str, recipe: str, **_: Any) -> None:
        trained.append((dataset, recipe))
        raise AssertionError("nothing is trained: every float version exists")

    def fake_quantise(models_dir: Path, name: str, version: int, mode: str, **_: Any) -> Path:
        quantised.append((name, version, mode))
        if name == "fashion_mnist":
            raise training.quantize.AccuracyLost("lost 0.3 points")
        target = models_dir / name / "4"
        target.mkdir()
        meta = {"recipe": {"name": "lean+dynamic"}, "metrics": {"accuracy": 0.99}}
        (target / "metadata.json").write_text(json.dumps(meta))
        return target

    monkeypatch.setattr(training.trainer, "train_and_export", fake_train)
    monkeypatch.setattr(training.quantize, "quantize_version", fake_quantise)
    args = ["all", "--recipe", "defaults", "--models-dir", str(tmp_path), "--if-missing"]
    args += ["--quiet"]
    # fashion_mnist's copy is refused: reported, not a failure (its source stays served, and a
    # container's one-shot training must still let the service start); mnist's copy is made
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert quantised == [("mnist", 3, "dynamic"), ("fashion_mnist", 1, "dynamic")]
    assert "refused: fashion_mnist / lean+dynamic: lost 0.3 points" in err
    assert "fashion_mnist / lean+dynamic: refused" in out
    assert "mnist          lean+dynamic   accuracy 0.9900" in out
    assert trained == []
    # a copy with no version to quantise is an error, and the run fails
    assert main(["pima", "--recipe", "best", "--models-dir", str(tmp_path), "--if-missing"]) == 0
    assert main(["mnist", "--recipe", "best+dynamic", "--models-dir", str(tmp_path)]) == 1
    assert "no finished mnist version trained with recipe 'best'" in capsys.readouterr().err

    quantised.clear()
    _finished(tmp_path, "fashion_mnist", 2, "lean+dynamic")
    assert main(args) == 0
    assert quantised == [] and trained == []
    assert "mnist / lean+dynamic: a finished version exists, skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["--epochs", "-1"], "argument --epochs: must be at least 1, got -1"),
        (["--subset", "0"], "argument --subset: must be at least 1, got 0"),
    ],
)
def test_a_count_below_one_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    """--epochs 0 published an untrained model as a finished version."""
    with pytest.raises(SystemExit) as stop:
        main(["pima", "--models-dir", str(tmp_path), *args])
    assert stop.value.code == 2 and said in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("recipe", "said"), [("fastest", "no recipe 'fastest'"), ("", "empty")])
def test_a_recipe_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recipe: str, said: str
) -> None:
    assert main(["pima", "--recipe", recipe, "--models-dir", str(tmp_path)]) == 2
    assert said in capsys.readouterr().err


def test_a_bad_count_in_the_environment_is_a_usage_error_that_spares_help(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAIN_EPOCHS", "abc")
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["pima", "--models-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert "TRAIN_EPOCHS must be a whole number, got 'abc'" in capsys.readouterr().err


def test_a_models_dir_that_cannot_be_written_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("trained although the repository cannot be written")

    import training.trainer

    monkeypatch.setattr(training.trainer, "train_and_export", never)
    a_file = tmp_path / "models"
    a_file.write_text("not a folder")
    assert main(["pima", "--models-dir", str(a_file)]) == 2
    assert f"the model repository {a_file} cannot be written" in capsys.readouterr().err
