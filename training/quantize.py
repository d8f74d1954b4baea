"""Post-training quantisation of a finished version into a new version.

``python -m training.quantize NAME --from-version V --mode dynamic|float16|int8 [--models-dir DIR]``

Converts version V's SavedModel with the TFLite converter (``int8``: weights and activations, with
a representative data set of real training images; the input and output stay float32, so the
service's contract is unchanged), evaluates the new ``model.tflite`` on the real test set with the
LiteRT interpreter, times it at batch 1 and 16 (one thread, as the service runs it), and exports
a new version: V's SavedModel and service files (conformal scores, OOD statistics, backgrounds)
copied with their metadata blocks, the new TFLite file, metrics recomputed on the test set,
golden outputs of the new file, and ``metadata.json`` written last, atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

MODES = ("dynamic", "float16", "int8")
REPRESENTATIVE_EXAMPLES = 500  # training images the int8 converter calibrates its ranges on
EXPORT_TIMING_S = 2.0  # the timing loop at export time: long enough to settle on a busy machine
# files a quantised version gets anew rather than from its source
_NOT_COPIED = ("metadata.json", "model.tflite", "report")


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
) -> Path:
    """Export version ``from_version`` of ``name`` quantised by ``mode`` as a new version."""
    from service.runtimes.litert import TFLiteRuntime
    from service.serving import latency
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

    source = Path(models_dir) / name / str(from_version)
    if not is_finished(source):
        raise SystemExit(f"{source} is not a finished version")
    meta = json.loads((source / METADATA_FILE).read_text())
    spec = get_spec(name)
    data = spec.load(data_dir=data_dir, cache_dir=cache_dir)
    split, _, _ = spec.hold_out_calibration(data.split)
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

        x_test = np.asarray(split.x_test, np.float32)
        probs = _batched(_tflite_fn(target / TFLITE_FILE), x_test)
        metrics = classification_metrics(split.y_test, probs, split.labels, meta.get("threshold"))
        float_file = source / TFLITE_FILE
        parity = (
            _compare(_batched(_tflite_fn(float_file), x_test), probs)
            if float_file.is_file()
            else None
        )
        golden_x = np.asarray(meta["golden"]["inputs"], np.float32)
        golden_out = _tflite_fn(target / TFLITE_FILE)(golden_x)

        files = file_checksums(target)
        runtime = TFLiteRuntime(target, {**meta, "files": files})
        runtime.load()
        timing = latency.measure(runtime.predict, golden_x, budget_s=EXPORT_TIMING_S)
        runtime.unload()
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # unfinished: no metadata, so never served
        raise

    recipe = meta.get("recipe") or {}
    payload = {
        **meta,
        "version": version,
        "recipe": {
            **recipe,
            "name": f"{recipe.get('name', 'unknown')}+{mode}",
            "quantisation": mode,
            "from_version": from_version,
        },
        "metrics": metrics,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.quantize",
        description="Quantise a finished version after training; export it as a new version.",
    )
    parser.add_argument("name", help="model name, e.g. mnist")
    parser.add_argument("--from-version", type=int, required=True, help="the float version")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("TRAIN_MODELS_DIR", "models"))
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    target = quantize_version(
        args.models_dir,
        args.name,
        args.from_version,
        args.mode,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
    )
    meta = json.loads((target / "metadata.json").read_text())
    lat = meta["latency"]
    print(
        f"{args.name} v{meta['version']} ({meta['recipe']['name']}): "
        f"accuracy {meta['metrics']['accuracy']:.4f}, "
        f"{lat['us_per_image_b1']} µs/image at batch 1, {lat['us_per_image_b16']} at 16, "
        f"{(target / 'model.tflite').stat().st_size} bytes -> {target}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
