"""Write one immutable model version: ``models/<name>/<version>/`` (see models/README.md).

The version folder is claimed atomically (``os.mkdir``), the SavedModel is written by
``Model.export`` into the folder itself (TF Serving's layout), a TFLite copy is converted from it
and kept only if it agrees with the SavedModel, the caller's report goes to ``report/``, and
``metadata.json`` is written last, atomically. A folder without ``metadata.json`` is unfinished.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training import interrupts
from training.data.local import atomic_write

FORMAT_VERSION = 2  # models/README.md says what each format adds
METADATA_FILE = "metadata.json"
TFLITE_FILE = "model.tflite"
REPORT_DIR = "report"
GOLDEN_ATOL = 1e-4
TFLITE_MAX_ABS_DIFF = 1e-5
SAVED_MODEL_MAX_ABS_DIFF = 1e-5
PARITY_BATCH = 1024
_LIBRARIES = ("numpy", "ai-edge-litert", "scikit-learn")


class ExportError(RuntimeError):
    """The exported artefact does not behave like the in-memory model."""


def _version_numbers(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    numbers = []
    for child in model_dir.iterdir():
        if child.is_dir() and child.name.isdigit() and int(child.name) > 0:
            numbers.append(int(child.name))
    return numbers


def next_version(models_dir: Path, name: str) -> int:
    """The next free version number: one above every numbered folder, finished or not."""
    return max(_version_numbers(Path(models_dir) / name), default=0) + 1


def is_finished(version_dir: Path) -> bool:
    """A version is finished once its metadata.json exists (it is written last)."""
    return (Path(version_dir) / METADATA_FILE).is_file()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(version_dir: Path) -> dict[str, str]:
    """SHA-256 of every file in the version except metadata.json, keyed by posix relative path."""
    root = Path(version_dir)
    sums: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel != METADATA_FILE and not rel.startswith(".metadata"):
            sums[rel] = _sha256(path)
    return sums


def _claim_version_dir(models_dir: Path, name: str) -> tuple[int, Path]:
    model_dir = Path(models_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    while True:
        version = next_version(models_dir, name)
        path = model_dir / str(version)
        try:
            os.mkdir(path)
        except FileExistsError:
            continue  # another writer took this number; versions only grow
        return version, path


def _batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    parts = [fn(x[i : i + PARITY_BATCH]) for i in range(0, len(x), PARITY_BATCH)]
    return np.concatenate(parts, axis=0)


def _saved_model_fn(version_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    loaded = tf.saved_model.load(str(version_dir))

    def run(x: np.ndarray) -> np.ndarray:
        # ``loaded`` must stay referenced, or its variables are garbage-collected.
        return np.asarray(loaded.serve(tf.constant(x, dtype=tf.float32)))

    return run


def _tflite_fn(tflite_path: Path) -> Callable[[np.ndarray], np.ndarray]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - fallback for environments without LiteRT
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(tflite_path))
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(in_index, list(x.shape), strict=False)
        interpreter.allocate_tensors()
        interpreter.set_tensor(in_index, np.ascontiguousarray(x, dtype=np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out_index))

    return run


def _decisions(probs: np.ndarray) -> np.ndarray:
    """Predicted class per row: argmax, or p >= 0.5 for a single sigmoid output."""
    flat = probs.reshape(len(probs), -1)
    if flat.shape[1] == 1:
        return (flat[:, 0] >= 0.5).astype(np.int64)
    return np.argmax(flat, axis=1)


def _compare(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    diff = float(np.max(np.abs(reference.astype(np.float64) - other.astype(np.float64))))
    agree = float(np.mean(_decisions(reference) == _decisions(other)))
    return {"max_abs_diff": diff, "argmax_agree": agree, "n": len(reference)}


def _export_tflite(version_dir: Path, parity_inputs: np.ndarray) -> dict[str, Any]:
    """Convert the SavedModel to TFLite; keep the file only if it matches the SavedModel."""
    target = version_dir / TFLITE_FILE
    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(version_dir))
        target.write_bytes(converter.convert())
        reference = _batched(_saved_model_fn(version_dir), parity_inputs)
        parity = _compare(reference, _batched(_tflite_fn(target), parity_inputs))
    except Exception as exc:
        target.unlink(missing_ok=True)
        return {"tflite": None, "tflite_parity": None, "tflite_error": f"conversion failed: {exc}"}
    if parity["max_abs_diff"] > TFLITE_MAX_ABS_DIFF or parity["argmax_agree"] < 1.0:
        target.unlink(missing_ok=True)
        reason = (
            f"parity check failed: max_abs_diff={parity['max_abs_diff']:.3g} "
            f"(limit {TFLITE_MAX_ABS_DIFF}), argmax_agree={parity['argmax_agree']:.4f}"
        )
        return {"tflite": None, "tflite_parity": parity, "tflite_error": reason}
    return {"tflite": TFLITE_FILE, "tflite_parity": parity}


def _library_versions() -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    for dist in _LIBRARIES:
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """World-readable (0644), so a non-root server can read what a root trainer wrote."""
    text = json.dumps(payload, indent=1, allow_nan=False, default=_json_default) + "\n"
    atomic_write(path, text.encode("utf-8"))


def export_version(
    model: keras.Model,
    *,
    models_dir: Path,
    name: str,
    metadata: dict[str, Any],
    golden_inputs: np.ndarray,
    parity_inputs: np.ndarray | None = None,
    write_report: Callable[[Path], None] | None = None,
    write_artifacts: Callable[[Path], dict[str, Any]] | None = None,
    tflite: bool = True,
) -> Path:
    """Export ``model`` (the serving model, returning probabilities) as a new version.

    ``metadata`` holds the caller's fields (task, description, labels, input, output, threshold,
    metrics, recipe, training, data). ``write_artifacts`` writes further files the service
    reads into the folder and returns the metadata blocks naming them. Returns the finished
    version folder.
    """
    golden_x = np.asarray(golden_inputs, dtype=np.float32)
    parity_x = golden_x if parity_inputs is None else np.asarray(parity_inputs, np.float32)
    version, version_dir = _claim_version_dir(Path(models_dir), name)
    try:
        return _write_version(
            model,
            name,
            version,
            version_dir,
            metadata,
            golden_x,
            parity_x,
            write_report,
            write_artifacts,
            tflite,
        )
    except BaseException:  # a failure or an interrupt: no folder left behind, nothing published
        if not (version_dir / METADATA_FILE).is_file():
            shutil.rmtree(version_dir, ignore_errors=True)
        raise


def _write_version(
    model: Any,
    name: str,
    version: int,
    version_dir: Path,
    metadata: dict[str, Any],
    golden_x: np.ndarray,
    parity_x: np.ndarray,
    write_report: Callable[[Path], None] | None,
    write_artifacts: Callable[[Path], dict[str, Any]] | None,
    tflite: bool,
) -> Path:
    model.export(str(version_dir), format="tf_saved_model", verbose=False)
    saved_model = _saved_model_fn(version_dir)
    golden_out = saved_model(golden_x)
    in_memory = np.asarray(model(golden_x, training=False))
    check = _compare(in_memory, golden_out)
    if check["max_abs_diff"] > SAVED_MODEL_MAX_ABS_DIFF:
        raise ExportError(f"{version_dir}: SavedModel differs from the in-memory model: {check}")

    artifacts: dict[str, Any] = {"saved_model": "."}
    if tflite:
        artifacts.update(_export_tflite(version_dir, parity_x))
    else:
        artifacts.update({"tflite": None, "tflite_parity": None, "tflite_error": "disabled"})

    if write_report is not None:
        report_dir = version_dir / REPORT_DIR
        report_dir.mkdir(exist_ok=True)
        write_report(report_dir)

    extra = write_artifacts(version_dir) if write_artifacts is not None else {}

    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": name, "version": version}
    payload.update(metadata)
    payload.update(extra)
    payload.update(
        {
            "files": file_checksums(version_dir),
            "artifacts": artifacts,
            "golden": {
                "inputs": golden_x.tolist(),
                "outputs": golden_out.astype(np.float32).tolist(),
                "atol": GOLDEN_ATOL,
            },
            "libraries": _library_versions(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    interrupts.check()  # a Ctrl-C that TensorFlow swallowed still stops the publication
    _write_json_atomically(version_dir / METADATA_FILE, payload)
    return version_dir
