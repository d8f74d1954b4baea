"""Tiny synthetic model repositories for the tests, and the metadata they carry.

The tiny repository is built with the project's exporter (``training.export``): random-weight
Keras models small enough to export in seconds, with hand-written metadata in the format of
models/README.md, plus deliberately broken versions. It is cached under ``tests/.cache``, keyed
by this module and the exporter, so a stale copy is never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from training.specs import LABELS

PIMA_FEATURES = [
    ("pregnant", "count", 0, 30, False),
    ("glucose", "mg/dL", 0, 300, True),
    ("pressure", "mm Hg", 0, 200, True),
    ("triceps", "mm", 0, 100, True),
    ("insulin", "µU/mL", 0, 1000, True),
    ("mass", "kg/m²", 0, 80, True),
    ("pedigree", "1", 0, 3, False),
    ("age", "years", 0, 120, False),
]
PIMA_ROW = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
FASHION_LABELS = LABELS["fashion_mnist"]  # the trainer's own labels


def image_metadata(labels: list[str], recipe: str) -> dict[str, Any]:
    return {
        "task": "image_classification",
        "description": "tiny test model",
        "labels": labels,
        "input": {
            "name": "pixels",
            "shape": [28, 28],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "features": None,
            "framing": "digit" if labels == [str(d) for d in range(10)] else "item",
            "side": 28,
        },
        "output": {"name": "probabilities", "kind": "softmax", "shape": [10]},
        "threshold": None,
        "metrics": {"accuracy": 0.1},
        "recipe": {"name": recipe, "hyperparameters": {}, "seed": 0},
    }


def pima_metadata() -> dict[str, Any]:
    features = [
        {
            "name": n,
            "unit": u,
            "description": n,
            "min": lo,
            "max": hi,
            "typical": [lo, hi],
            "missing_if_zero": m,
        }
        for n, u, lo, hi, m in PIMA_FEATURES
    ]
    return {
        "task": "binary_classification",
        "description": "tiny pima",
        "labels": ["no diabetes", "diabetes"],
        "input": {
            "name": "features",
            "shape": [8],
            "dtype": "float32",
            "range": None,
            "features": features,
        },
        "output": {"name": "probabilities", "kind": "sigmoid", "shape": [1]},
        "threshold": 0.5,
        "metrics": {"accuracy": 0.6, "roc_auc": 0.5},
        "recipe": {"name": "tutorial", "hyperparameters": {}, "seed": 0},
    }


# A few features' other names and the label's, as training's Pima spec writes them.
PIMA_ALIASES = {"pregnant": ["Pregnancies"], "pressure": ["BloodPressure", "pres"], "mass": ["BMI"]}
PIMA_LABEL_NAMES = ["diabetes", "Outcome"]


def pima_metadata_with_aliases() -> dict[str, Any]:
    """:func:`pima_metadata` with other names for some features and for the label column."""
    meta = pima_metadata()
    for feature in meta["input"]["features"]:
        feature["aliases"] = PIMA_ALIASES.get(feature["name"], [])
    meta["input"]["label_names"] = PIMA_LABEL_NAMES
    return meta


def _report(report_dir: Path) -> None:
    from PIL import Image

    # as the trainer wrote it before it left its host's paths out
    (report_dir / "report.md").write_text("# tiny report\n\nData: cache /srv/host/data/mnist.\n")
    Image.new("L", (8, 8), 128).save(report_dir / "history.png")


def build_tiny_repository(root: Path) -> Path:
    """mnist v1 (tutorial) + v2 (best) + unfinished 3; fashion_mnist SavedModel-only;
    pima; broken (checksum mismatch); selftest (golden outputs altered)."""
    import keras

    from training.export import export_version

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((4, 28, 28), dtype=np.float32)
    digits = [str(d) for d in range(10)]

    def classifier() -> keras.Model:
        return keras.Sequential(
            [
                keras.Input((28, 28)),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )

    def export(
        model: keras.Model, name: str, meta: dict[str, Any], x: np.ndarray, **kw: Any
    ) -> Path:
        return export_version(
            model, models_dir=root, name=name, metadata=meta, golden_inputs=x, **kw
        )

    export(classifier(), "mnist", image_metadata(digits, "tutorial"), images, write_report=_report)
    export(classifier(), "mnist", image_metadata(digits, "best"), images)
    (root / "mnist" / "3").mkdir()  # unfinished: no metadata.json
    (root / "mnist" / "3" / "saved_model.pb").write_bytes(b"half-written")
    export(
        classifier(),
        "fashion_mnist",
        image_metadata(FASHION_LABELS, "tutorial"),
        images,
        tflite=False,
    )
    pima = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                1,
                activation="sigmoid",
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            ),
        ]
    )
    records = np.array([PIMA_ROW, [1, 85, 66, 29, 0, 26.6, 0.351, 31]], dtype=np.float32)
    export(pima, "pima", pima_metadata(), records)
    broken = export(classifier(), "broken", image_metadata(digits, "tutorial"), images)
    with (broken / "model.tflite").open("ab") as fh:
        fh.write(b"\0")
    selftest = export(classifier(), "selftest", image_metadata(digits, "tutorial"), images)
    meta = json.loads((selftest / "metadata.json").read_text())
    meta["golden"]["outputs"] = [[0.1] * 10 for _ in meta["golden"]["outputs"]]
    (selftest / "metadata.json").write_text(json.dumps(meta))
    (root / "mnist" / "1" / "report" / "unlisted.md").write_text("not in metadata")
    return root


# Sorted conformal scores 0.00, 0.01, ..., 0.99: at alpha 0.1 the threshold is the 91st, 0.90,
# so a set holds every label with a probability of at least 0.10.
TRUST_SCORES = np.arange(100, dtype=np.float32) / 100


def build_trust_repository(root: Path) -> Path:
    """mnist 1 with prediction sets and an OOD model; pima 1 with prediction sets; fashion_mnist
    1 without either (a version trained before calibration)."""
    import keras

    from service.serving import conformal, ood
    from training.export import export_version

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    images = rng.random((8, 28, 28), dtype=np.float32)
    digits = [str(d) for d in range(10)]

    def with_sets(extra: dict[str, Any] | None = None) -> Any:
        def write(folder: Path) -> dict[str, Any]:
            conformal.save(TRUST_SCORES, folder / "conformal.npy")
            block = {"method": "lac", "file": "conformal.npy", "n": 100, "alpha": 0.1}
            return {"conformal": block, **(extra(folder) if extra else {})}

        return write

    def with_ood(folder: Path) -> dict[str, Any]:
        train = rng.random((300, 28, 28), dtype=np.float32) * 0.5
        arrays = ood.fit(train, rng.integers(0, 10, 300), components=4)
        model = ood.from_arrays(arrays, 0.0)
        held_out = rng.random((200, 28, 28), dtype=np.float32) * 0.5
        threshold = ood.choose_threshold(model, held_out, 0.5)
        ood.save(arrays, folder / "ood.npz")
        return {"ood": {"method": ood.METHOD, "file": "ood.npz", "threshold": threshold}}

    def classifier() -> keras.Model:
        return keras.Sequential(
            [
                keras.Input((28, 28)),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )

    meta = image_metadata(digits, "tutorial")
    meta["calibration"] = {"method": "temperature", "params": {"temperature": 1.0}}
    export_version(
        classifier(),
        models_dir=root,
        name="mnist",
        metadata=meta,
        golden_inputs=images,
        write_artifacts=with_sets(with_ood),
    )
    export_version(
        classifier(),
        models_dir=root,
        name="fashion_mnist",
        metadata=image_metadata(FASHION_LABELS, "tutorial"),
        golden_inputs=images,
    )
    pima = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                1,
                activation="sigmoid",
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            ),
        ]
    )
    records = np.array([PIMA_ROW, [1, 85, 66, 29, 0, 26.6, 0.351, 31]], dtype=np.float32)
    export_version(
        pima,
        models_dir=root,
        name="pima",
        metadata=pima_metadata(),
        golden_inputs=records,
        write_artifacts=with_sets(),
    )
    return root


CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "tiny_repo"


def builder_key() -> str:
    """Changes whenever this module or the exporter changes, so a stale cache is never used."""
    import training.export

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(training.export.__file__).read_bytes())
    return digest.hexdigest()[:16]


def cached_tiny_repository(staging: Path, kind: str = "models") -> Path:
    """The tiny repository from the cache, built first (in ``staging``) when missing;
    ``kind="trust"``: the one with prediction sets (:func:`build_trust_repository`)."""
    target = CACHE_DIR / builder_key() / kind
    if not target.is_dir():
        (build_trust_repository if kind == "trust" else build_tiny_repository)(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.parent / f".partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staging, partial)
        with contextlib.suppress(OSError):  # another session may have won the race
            os.replace(partial, target)
        shutil.rmtree(partial, ignore_errors=True)
    return target
