"""In-process cost of each way to run the MNIST model: the measurement behind the serving runtime.

``python -m benchmarks.runtimes [--models-dir models] [--quick]`` times, on one real MNIST test
image (batch 1) and on batches of 1024 and 10,000:

- Keras ``model.predict``, an eager ``model(x)`` call and a ``tf.function`` of the model (the
  tutorial's Keras model rebuilt from its recipe, with the exported version's weights);
- the exported SavedModel's ``serve`` endpoint;
- the LiteRT (TFLite) interpreter on ``model.tflite``, bare and through the service's own
  ``TFLiteRuntime.predict`` (what the batcher calls);
- a numpy forward pass of the same weights (MLP only);
- ONNX Runtime, when ``onnxruntime`` and ``tf2onnx`` happen to be installed.

Each figure is the median over several repeats of a timed loop. Results go to
``benchmarks/results/runtimes.json`` and ``runtimes.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.payloads import ModelVersionInfo, find_versions, mnist_images
from benchmarks.report import markdown_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
Call = Callable[[np.ndarray], Any]


def time_call(fn: Call, x: np.ndarray, *, budget_s: float = 0.3, repeats: int = 5) -> float:
    """Median seconds per call of ``fn(x)``: loops sized to ~budget/repeats, after a warm-up."""
    fn(x)
    t0 = time.perf_counter()
    fn(x)
    once = max(time.perf_counter() - t0, 1e-7)
    loops = max(1, int(budget_s / repeats / once))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn(x)
        samples.append((time.perf_counter() - t0) / loops)
    return statistics.median(samples)


def keras_model(info: ModelVersionInfo, version_dir: Path, loaded: Any) -> Any:
    """The tutorial's Keras model from its recipe, with the exported version's weights copied in."""
    from training.recipes import get_recipe

    recipe = get_recipe(info.name, info.recipe if info.recipe != "?" else "tutorial")
    model = recipe.build(recipe.hyperparameters())
    pool = list(loaded.variables)
    for weight in model.weights:
        index = next((i for i, v in enumerate(pool) if tuple(v.shape) == tuple(weight.shape)), None)
        if index is not None:
            weight.assign(pool.pop(index).numpy())
    return model


def numpy_mlp(model: Any) -> Call | None:
    """A numpy forward pass of a Flatten-Dense-Dropout-Dense(softmax) model, else None."""
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    if len(dense) != 2:
        return None
    (w1, b1), (w2, b2) = (tuple(np.asarray(w) for w in layer.get_weights()) for layer in dense)

    def forward(x: np.ndarray) -> np.ndarray:
        h = np.maximum(x.reshape(len(x), -1) @ w1 + b1, 0.0)
        z = h @ w2 + b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return forward


def tflite_call(path: Path) -> Call:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    size = [-1]

    def run(x: np.ndarray) -> np.ndarray:
        if size[0] != len(x):
            interp.resize_tensor_input(inp, list(x.shape), strict=False)
            interp.allocate_tensors()
            size[0] = len(x)
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(out)

    return run


def onnx_call(loaded_dir: Path, shape: tuple[int, ...]) -> Call | None:
    try:
        import onnxruntime as ort  # type: ignore[import-not-found]
        import tensorflow as tf
        import tf2onnx  # type: ignore[import-not-found]
    except ImportError:
        return None
    loaded = tf.saved_model.load(str(loaded_dir))
    spec = (tf.TensorSpec([None, *shape], tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(loaded.serve, input_signature=spec)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def measure(models_dir: Path, quick: bool) -> dict[str, Any]:
    import tensorflow as tf

    from service.runtimes.litert import TFLiteRuntime

    info = find_versions(models_dir, ("mnist",))["mnist"]
    version_dir = models_dir / "mnist" / str(info.version)
    images = mnist_images(10_000)
    loaded = tf.saved_model.load(str(version_dir))
    model = keras_model(info, version_dir, loaded)
    graph = tf.function(lambda x: model(x, training=False))
    calls: dict[str, Call | None] = {
        "model.predict": lambda x: model.predict(x, verbose=0),
        "eager model(x)": lambda x: model(x, training=False),
        "tf.function": lambda x: graph(x),
        "SavedModel serve": lambda x: loaded.serve(x),
    }
    tflite_path = version_dir / "model.tflite"
    if tflite_path.is_file():
        calls["TFLite interpreter"] = tflite_call(tflite_path)
        runtime = TFLiteRuntime(version_dir, info.metadata)
        runtime.load()
        calls["service TFLiteRuntime.predict"] = runtime.predict
    calls["numpy"] = numpy_mlp(model)
    calls["ONNX Runtime"] = onnx_call(version_dir, tuple(info.metadata["input"]["shape"]))
    reference = np.asarray(loaded.serve(images[:1024]))
    budget = 0.1 if quick else 0.4
    rows: list[dict[str, Any]] = []
    for name, fn in calls.items():
        if fn is None:
            rows.append({"call": f"{name} (not installed)", "available": False})
            continue
        row: dict[str, Any] = {"call": name, "available": True}
        got = np.asarray(fn(images[:1024]))
        row["max_abs_diff_vs_savedmodel"] = float(
            np.abs(got.reshape(reference.shape) - reference).max()
        )
        row["batch1_us"] = time_call(fn, images[:1], budget_s=budget) * 1e6
        slow = name in ("model.predict", "eager model(x)")
        for batch in (1024, 10_000):
            if slow and batch > 1024:
                continue
            per_call = time_call(fn, images[:batch], budget_s=budget * 2, repeats=3)
            row[f"batch{batch}_img_per_s"] = batch / per_call
        rows.append(row)
        print(f"  {name:32} {row['batch1_us']:10.1f} us  ", flush=True)
    return {
        "model": f"mnist version {info.version} ({info.recipe})",
        "threads": "TFLite num_threads=1; process pinned to one core when taskset is available",
        "rows": rows,
    }


def render(data: dict[str, Any]) -> str:
    def num(value: Any, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    rows = [
        [
            r["call"],
            num(r.get("batch1_us"), 1),
            num(r.get("batch1024_img_per_s")),
            num(r.get("batch10000_img_per_s")),
            f"{r['max_abs_diff_vs_savedmodel']:.1e}" if r["available"] else "-",
        ]
        for r in data["rows"]
    ]
    table = markdown_table(
        ["call", "batch 1, us/call", "batch 1024, img/s", "batch 10000, img/s", "max diff"], rows
    )
    note = ""
    rebuilt = ("model.predict", "eager model(x)", "tf.function", "numpy")
    if any(
        r["available"] and r["call"] in rebuilt and r["max_abs_diff_vs_savedmodel"] > 1e-3
        for r in data["rows"]
    ):
        note = (
            "\nThe Keras and numpy rows run the recipe's model rebuilt with the version's weights, "
            "without what the export adds to it (a calibration's temperature, say): the same "
            "work per call, other probabilities (max diff).\n"
        )
    return f"### In-process cost per call, {data['model']}\n\n{table}\n{note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtimes", description=__doc__)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})  # one core, as the service's inference thread has
    data = measure(args.models_dir.resolve(), args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runtimes.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    markdown = render(data)
    (args.out / "runtimes.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
