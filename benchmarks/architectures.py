"""What an image recipe's architecture costs per call, before any training.

``python -m benchmarks.architectures [--layers]`` builds each image recipe's serving classifier
with untrained weights (the cost of a call does not depend on the weights), converts it to TFLite
in float32 and dynamic-range quantised, as ``training.quantize`` does, and times it through LiteRT
with one thread (``service.serving.latency``): µs per image at batch 1 and 16. ``--layers`` also
times every prefix of each classifier (the model cut after each layer), so the growth from one
row to the next is what that layer costs. Writes ``benchmarks/results/architectures.{md,json}``.

Recipes are compared here before spending CPU on training them; their trained versions are
timed by ``benchmarks.pareto``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
MODES = ("float32", "dynamic")


def tflite_bytes(model: Any, mode: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its signatures
        content: bytes = converter.convert()
    return content


def time_tflite(content: bytes, seconds: float) -> dict[str, float]:
    """µs per image at batch 1 and 16 of a ``[N, 28, 28]`` float32 model."""
    from ai_edge_litert.interpreter import Interpreter

    from service.serving import latency

    interpreters: dict[int, Any] = {}

    def predict(x: np.ndarray) -> np.ndarray:
        it = interpreters.get(len(x))
        if it is None:
            it = interpreters[len(x)] = Interpreter(model_content=content, num_threads=1)
            it.resize_tensor_input(it.get_input_details()[0]["index"], list(x.shape))
            it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        out: np.ndarray = it.get_tensor(it.get_output_details()[0]["index"])
        return out

    sample = np.random.default_rng(0).random((8, 28, 28), dtype=np.float32)
    timing = latency.measure(predict, sample, budget_s=seconds)
    return {
        "us_per_image_b1": timing["us_per_image_b1"],
        "us_per_image_b16": timing["us_per_image_b16"],
    }


def measure(seconds: float, layers: bool) -> list[dict[str, Any]]:
    import keras

    from training.modeling import cnn
    from training.quantize import image_models
    from training.recipes import get_recipe, recipe_names

    rows: list[dict[str, Any]] = []
    for dataset in image_models():
        for name in recipe_names(dataset):
            hp = get_recipe(dataset, name).hyperparameters()
            if "widths" not in hp:  # not a CNN recipe (the tutorial's MLP)
                continue
            keras.backend.clear_session()  # layer names then count from zero in every model
            model = cnn.build_classifier(hp)
            cuts = [(layer.name, layer.output) for layer in model.layers[1:]] if layers else []
            cuts.append(("whole model", model.output))
            for cut, output in cuts:
                sub = keras.Model(model.input, output)
                for mode in MODES:
                    row = {
                        "model": dataset,
                        "recipe": name,
                        "up_to": cut,
                        "mode": mode,
                        "parameters": int(sub.count_params()),
                        **time_tflite(tflite_bytes(sub, mode), seconds),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    from service.serving.latency import cpu_model

    lines = [
        "# The cost of each image recipe's architecture",
        "",
        f"`python -m benchmarks.architectures` on {cpu_model()}: untrained serving classifiers "
        "through LiteRT, one thread, median call time. `up to`: the classifier cut after that "
        "layer (`whole model` is the classifier itself).",
        "",
        "| model | recipe | up to | mode | parameters | µs/image b1 | µs/image b16 |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['recipe']} | {r['up_to']} | {r['mode']} | {r['parameters']:,} "
            f"| {r['us_per_image_b1']:.1f} | {r['us_per_image_b16']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per model")
    parser.add_argument("--layers", action="store_true", help="also time every layer prefix")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = measure(args.seconds, args.layers)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "architectures.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "architectures.md").write_text(markdown(rows))
    print(f"wrote {args.out / 'architectures.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
