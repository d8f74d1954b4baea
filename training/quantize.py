"""Post-training quantisation of a finished version into a new version.

``python -m training.quantize NAME|all --mode dynamic|float16|int8
(--from-version V | --from-recipe RECIPE) [--models-dir DIR] [--max-accuracy-drop D]
[--subset N]``

Converts version V's SavedModel (or the newest finished version trained with RECIPE) with the
TFLite converter (``int8``: weights and activations, with a representative data set of real
training images; the input and output stay float32, so the service's contract is unchanged),
evaluates the new ``model.tflite`` on the real test set with the LiteRT interpreter and refuses it
(:class:`AccuracyLost`) when it loses more than ``--max-accuracy-drop`` of the source's accuracy
(the source's float TFLite file measured on the same test images, when it has one).
It times the file at batch 1 and 16 (one thread, as the service runs it) and exports a new
version:

- V's SavedModel and the files that do not depend on the model's outputs (the OOD statistics,
  which live in pixel space, backgrounds), copied with their metadata blocks;
- an image version's drift reference with the predicted-class shares of the quantised file;
- the new TFLite file, the metrics recomputed on the test set, golden outputs of the new file,
  and its own ``report/`` (test-set figures and plots of the quantised file);
- the conformal scores recomputed from the quantised model on the calibration split (the same
  split the trainer held out), with the prediction-set figures on the test set; the calibration
  block keeps the source's fitted parameters (they are inside the converted graph) and its
  "after" summaries are measured on the quantised model;
- ``metadata.json``, written last, atomically.

``NAME`` ``all`` quantises every image model, the ones whose version runs on a TFLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.repository.disk import without_host_path
from training import interrupts
from training.cli import existing_dir, positive_int, writable_models_dir

if TYPE_CHECKING:
    from training.specs.base import Prepared

MODES = ("dynamic", "float16", "int8")
REPRESENTATIVE_EXAMPLES = 500  # training images the int8 converter calibrates its ranges on
EXPORT_TIMING_S = 2.0  # the timing loop at export time: long enough to settle on a busy machine
DEFAULT_MAX_ACCURACY_DROP = 0.002  # 20 test images in 10,000
# files a quantised version gets anew rather than from its source (the conformal scores are
# recomputed too, under the trainer's file name)
_NOT_COPIED = ("metadata.json", "model.tflite", "report")


class AccuracyLost(RuntimeError):
    """The quantised model lost more test accuracy than allowed; nothing was exported."""


class SourceMismatch(ValueError):
    """The data loaded for the copy is not the data its source was trained on (another
    ``subset``): its calibration split could hold the source's training images."""


def newest_version(models_dir: Path, name: str, recipe: str) -> int:
    """The newest finished version of ``name`` trained with the recipe named ``recipe``."""
    from training.export import METADATA_FILE

    found = []
    for meta_path in (Path(models_dir) / name).glob(f"*/{METADATA_FILE}"):
        folder = meta_path.parent.name
        if not folder.isdigit() or str(int(folder)) != folder:  # "1.bak", "018": not versions
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a finished version the service would load either
        if isinstance(meta, dict) and (meta.get("recipe") or {}).get("name") == recipe:
            found.append(int(folder))
    if not found:
        raise FileNotFoundError(f"no finished {name} version trained with recipe {recipe!r}")
    return max(found)


def image_models() -> list[str]:
    """The data sets whose models are image classifiers (the ones worth quantising)."""
    from training.specs import DATASETS, ImageClassificationSpec, get_spec

    return [name for name in DATASETS if isinstance(get_spec(name), ImageClassificationSpec)]


def _converter(saved_model: Path, mode: str, representative: np.ndarray) -> Any:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":

        def examples() -> Iterator[list[np.ndarray]]:
            for row in representative:
                yield [row[None].astype(np.float32)]

        converter.representative_dataset = examples
        # float32 stays the model's input and output: the converter adds (de)quantise ops
    elif mode != "dynamic":
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    return converter


def quantize_version(
    models_dir: Path,
    name: str,
    from_version: int,
    mode: str,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    subset: int | None = None,
) -> Path:
    """Export version ``from_version`` of ``name`` quantised by ``mode`` as a new version.

    ``subset`` keeps the first N training and test examples (smoke runs, as the trainer's).
    """
    from service.runtimes.litert import TFLiteRuntime
    from service.serving import latency
    from training import ood_confidence
    from training.export import (
        GOLDEN_ATOL,
        METADATA_FILE,
        TFLITE_FILE,
        _batched,
        _claim_version_dir,
        _compare,
        _library_versions,
        _tflite_fn,
        _write_json_atomically,
        file_checksums,
        is_finished,
    )
    from training.metrics import classification_metrics
    from training.specs import get_spec
    from training.specs.images import OOD_CONFIDENCE, OOD_FLAGGED

    source = Path(models_dir) / name / str(from_version)
    if not is_finished(source):
        raise FileNotFoundError(f"{source} is not a finished version")
    meta = json.loads((source / METADATA_FILE).read_text())
    spec = get_spec(name)
    data = spec.load(data_dir=data_dir, cache_dir=cache_dir, subset=subset)
    split, x_cal, y_cal = spec.hold_out_calibration(data.split)
    _check_same_data(meta, len(split.x_train), len(x_cal), f"{name} v{from_version}")
    rng = np.random.default_rng(0)
    count = min(REPRESENTATIVE_EXAMPLES, len(split.x_train))
    representative = split.x_train[rng.choice(len(split.x_train), count, replace=False)]

    started = time.perf_counter()
    content = _converter(source, mode, representative).convert()
    seconds = time.perf_counter() - started

    version, target = _claim_version_dir(Path(models_dir), name)
    try:
        for item in source.iterdir():
            if item.name in _NOT_COPIED or item.name.startswith(".metadata"):
                continue
            if item.is_dir():
                shutil.copytree(item, target / item.name)
            else:
                shutil.copy2(item, target / item.name)
        (target / TFLITE_FILE).write_bytes(content)

        run = _tflite_fn(target / TFLITE_FILE)
        x_test = np.asarray(split.x_test, np.float32)
        probs = _batched(run, x_test)
        metrics = classification_metrics(split.y_test, probs, split.labels, meta.get("threshold"))
        float_file = source / TFLITE_FILE
        source_probs = _batched(_tflite_fn(float_file), x_test) if float_file.is_file() else None
        if source_probs is not None:  # the same test images as the copy's, measured the same way
            source_metrics = classification_metrics(
                split.y_test, source_probs, split.labels, meta.get("threshold")
            )
            source_from = f"version {from_version} model.tflite (float32) on the same test images"
        else:
            source_metrics, source_from = meta["metrics"], f"version {from_version} metadata"
        check = {
            **_accuracy_check(float(source_metrics["accuracy"]), metrics, max_accuracy_drop),
            "source_accuracy_from": source_from,
        }
        if not check["passed"]:
            raise AccuracyLost(
                f"{name} v{from_version} quantised ({mode}): accuracy {check['accuracy']:.4f} "
                f"against {check['source_accuracy']:.4f}, more than {max_accuracy_drop} lost"
            )
        parity = _compare(source_probs, probs) if source_probs is not None else None
        trust = _remeasure_trust(
            meta, target, run, x_cal, y_cal, split.y_test, probs, metrics["accuracy"]
        )
        if meta.get("ood"):  # the doubt in its score is this file's
            trust["ood"] = ood_confidence.with_confidence(
                meta["ood"],
                target,
                lambda x: _batched(run, x),
                x_cal,
                OOD_FLAGGED,
                OOD_CONFIDENCE,
                (x_test, probs),
            )
        _rewrite_drift_reference(meta, target, run, split.x_train)
        recipe = _quantised_recipe(meta, mode, from_version)
        _write_report(meta, target, data, recipe, metrics, probs, trust)
        golden_x = np.asarray(meta["golden"]["inputs"], np.float32)
        golden_out = run(golden_x)

        files = file_checksums(target)
        runtime = TFLiteRuntime(target, {**meta, "files": files})
        runtime.load()
        timing = latency.measure(runtime.predict, golden_x, budget_s=EXPORT_TIMING_S)
        runtime.unload()
        interrupts.check()  # a Ctrl-C that TensorFlow swallowed still stops the publication
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # unfinished: no metadata, so never served
        raise

    payload = {
        **meta,
        **trust,
        "version": version,
        "recipe": recipe,
        "metrics": {**metrics, "quantisation_check": check},
        "training": {
            **(meta.get("training") or {}),
            "quantisation_seconds": round(seconds, 2),
            "test_examples": len(x_test),
        },
        "files": files,
        "artifacts": {
            "saved_model": ".",
            "tflite": TFLITE_FILE,
            # the float SavedModel stays as the portable copy; the TFLite file is the quantised one
            "tflite_parity": parity,
            "tflite_parity_against": f"version {from_version} model.tflite (float32)",
        },
        "golden": {
            "inputs": golden_x.tolist(),
            "outputs": golden_out.astype(np.float32).tolist(),
            "atol": GOLDEN_ATOL,
        },
        "latency": timing,
        "libraries": _library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_json_atomically(target / METADATA_FILE, payload)
    return target


def _quantised_recipe(meta: dict[str, Any], mode: str, from_version: int) -> dict[str, Any]:
    recipe = meta.get("recipe") or {}
    return {
        **recipe,
        "name": f"{recipe.get('name', 'unknown')}+{mode}",
        "quantisation": mode,
        "from_version": from_version,
    }


def _write_report(
    meta: dict[str, Any],
    target: Path,
    data: Prepared,
    recipe: dict[str, Any],
    metrics: dict[str, Any],
    probs: np.ndarray,
    trust: dict[str, Any],
) -> None:
    """The version's own ``report/`` (the model card shows it): the test-set figures and plots of
    the quantised file; the training history is the source's, the fit it was converted from. No
    reliability plot: the probabilities before calibration exist only in the source's training
    run, and the calibrator is inside the converted graph."""
    from training.report import ReportData, write_report

    report_dir = target / "report"
    report_dir.mkdir()
    write_report(
        report_dir,
        ReportData(
            dataset=meta["name"],
            description=f"{meta.get('description', '')} ({recipe['quantisation']}-quantised "
            f"copy of version {recipe['from_version']})",
            labels=list(data.split.labels),
            recipe=recipe,
            training=meta.get("training") or {},
            metrics=metrics,
            data_source=without_host_path(data.source),
            y_test=data.split.y_test,
            probs=probs,
            samples=data.samples,
            threshold=meta.get("threshold"),
            calibration=trust.get("calibration", meta.get("calibration")),
            conformal=trust.get("conformal", meta.get("conformal")),
        ),
    )


def _check_same_data(meta: dict[str, Any], train: int, calibration: int, source: str) -> None:
    """Refuse data other than the source's (see :class:`SourceMismatch`); a source that did not
    record its counts is taken as it is."""
    recorded = meta.get("training") or {}
    loaded = {"train_examples": train, "calibration_examples": calibration}
    differ = [
        f"{key} {recorded[key]} there, {value} here"
        for key, value in loaded.items()
        if key in recorded and recorded[key] != value
    ]
    if differ:
        raise SourceMismatch(
            f"{source} was trained on other data ({'; '.join(differ)}): quantise it with the "
            "subset it was trained with"
        )


def _accuracy_check(
    source_accuracy: float, metrics: dict[str, Any], max_drop: float
) -> dict[str, Any]:
    """The quantised model's test accuracy against its source's, and whether it may ship."""
    accuracy = float(metrics["accuracy"])
    return {
        "source_accuracy": source_accuracy,
        "accuracy": accuracy,
        "change": round(accuracy - source_accuracy, 6),
        "max_drop": max_drop,
        "passed": source_accuracy - accuracy <= max_drop + 1e-12,
    }


def _remeasure_trust(
    meta: dict[str, Any],
    target: Path,
    run: Callable[[np.ndarray], np.ndarray],
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    y_test: np.ndarray,
    probs_test: np.ndarray,
    accuracy: float,
) -> dict[str, Any]:
    """The ``conformal`` and ``calibration`` blocks measured on the quantised model.

    The conformal scores are rewritten in ``target`` from the quantised model's calibration-split
    probabilities, so the served prediction sets keep their coverage guarantee for this file.
    """
    from service.serving import conformal
    from training import calibration
    from training.export import _batched
    from training.metrics import class_probabilities
    from training.trainer import CONFORMAL_ALPHAS, CONFORMAL_FILE, prediction_set_figures

    blocks: dict[str, Any] = {}
    if not meta.get("conformal") and not meta.get("calibration"):
        return blocks
    probs_cal = _batched(run, np.asarray(x_cal, np.float32))
    measured_on = "this version's quantised model.tflite"
    if meta.get("conformal"):
        cal_probs = class_probabilities(probs_cal)
        scores = conformal.scores(cal_probs, y_cal)
        conformal.save(scores, target / CONFORMAL_FILE)
        class_probs = class_probabilities(probs_test)
        delta = meta["conformal"].get("delta")  # versions from before the margin have none
        chosen: dict[str, Any] = {}
        if delta is not None:  # the source chose its default alpha by rule: so does this file
            alpha, on_calibration = conformal.choose_alpha(scores, cal_probs, delta)
            chosen = {"alpha": alpha, "calibration_split": on_calibration}
        blocks["conformal"] = {
            **meta["conformal"],
            **chosen,
            "file": CONFORMAL_FILE,
            "n": len(scores),
            "test": [
                prediction_set_figures(scores, class_probs, y_test, alpha, delta)
                for alpha in CONFORMAL_ALPHAS
            ],
            "measured_on": measured_on,
        }
    if meta.get("calibration"):
        block = meta["calibration"]
        blocks["calibration"] = {
            **block,
            "after": {**calibration.summary(y_test, probs_test), "accuracy": accuracy},
            "calibration_split": {
                **(block.get("calibration_split") or {}),
                "after": calibration.summary(y_cal, probs_cal),
            },
            "fitted_on": f"version {meta.get('version')} (float); summaries: {measured_on}",
        }
    return blocks


def _rewrite_drift_reference(
    meta: dict[str, Any], target: Path, run: Callable[[np.ndarray], np.ndarray], x: np.ndarray
) -> None:
    """An image version's drift reference holds the classes its model predicts on the training
    images; the server compares them with what the TFLite file it runs predicts, so they are
    recomputed from the quantised file (the ink features do not depend on the model)."""
    from service.serving.drift import REFERENCE_FILE, image_reference
    from training.export import _batched

    if not meta.get("drift") or meta.get("task") != "image_classification":
        return  # a table's reference holds feature percentiles only: the copy stays right
    images = np.asarray(x, np.float32)
    classes = _batched(run, images).argmax(axis=1)
    reference = image_reference(images, classes, len(meta["labels"]))
    (target / REFERENCE_FILE).write_text(json.dumps(reference), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    with interrupts.handled():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.quantize",
        description="Quantise a finished version after training; export it as a new version.",
    )
    parser.add_argument("name", help="model name, e.g. mnist, or 'all' (every image model)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-version", type=positive_int, help="the float version")
    source.add_argument(
        "--from-recipe", help="the newest finished version trained with this recipe, e.g. best"
    )
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("TRAIN_MODELS_DIR", "models"))
    )
    parser.add_argument("--data-dir", type=existing_dir, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument(
        "--subset",
        type=positive_int,
        default=None,
        help="the first N examples, as the source was trained",
    )
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=DEFAULT_MAX_ACCURACY_DROP,
        help="refuse a quantised model that loses more test accuracy than this",
    )
    args = parser.parse_args(argv)
    from training.data.errors import DataIntegrityError, DataUnavailable

    names = image_models() if args.name == "all" else [args.name]
    problem = writable_models_dir(args.models_dir)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            version = args.from_version or newest_version(args.models_dir, name, args.from_recipe)
            target = quantize_version(
                args.models_dir,
                name,
                version,
                args.mode,
                data_dir=args.data_dir,
                cache_dir=args.cache_dir,
                max_accuracy_drop=args.max_accuracy_drop,
                subset=args.subset,
            )
        except (AccuracyLost, FileNotFoundError, SourceMismatch) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        except (DataUnavailable, DataIntegrityError) as exc:  # as python -m training says it
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"interrupted: no version of {name} was published", file=sys.stderr)
            return interrupts.exit_status()
        meta = json.loads((target / "metadata.json").read_text())
        lat = meta["latency"]
        print(
            f"{name} v{meta['version']} ({meta['recipe']['name']} of v{version}): "
            f"accuracy {meta['metrics']['accuracy']:.4f}, "
            f"{lat['us_per_image_b1']} µs/image at batch 1, {lat['us_per_image_b16']} at 16, "
            f"{(target / 'model.tflite').stat().st_size} bytes -> {target}",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
