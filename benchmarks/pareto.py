"""Accuracy against latency for every finished version: the table the default policy works from.

``python -m benchmarks.pareto --models-dir DIR [--seconds S]`` times each version's
``model.tflite`` through the service's own LiteRT runtime (one thread) at batch 1 and 16, and
writes ``benchmarks/results/pareto.{md,json}``: test accuracy (from metadata.json), µs per image,
file size, training time, and whether the version is on the accuracy/latency Pareto front of its
model (no other version is both at least as accurate and faster at batch 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from service.runtimes.litert import TFLITE_FILE, TFLiteRuntime
from service.serving import latency

RESULTS = Path(__file__).parent / "results"


def measure_version(folder: Path, seconds: float) -> dict[str, Any] | None:
    meta = json.loads((folder / "metadata.json").read_text())
    if not (folder / TFLITE_FILE).is_file() or TFLITE_FILE not in meta.get("files", {}):
        return None
    runtime = TFLiteRuntime(folder, meta)
    runtime.load()
    timing = latency.measure(
        runtime.predict, np.asarray(meta["golden"]["inputs"], np.float32), budget_s=seconds
    )
    runtime.unload()
    training = meta.get("training") or {}
    recipe = meta.get("recipe") or {}
    return {
        "model": meta["name"],
        "version": meta["version"],
        "recipe": recipe.get("name"),
        "accuracy": meta["metrics"]["accuracy"],
        "us_per_image_b1": timing["us_per_image_b1"],
        "us_per_image_b16": timing["us_per_image_b16"],
        "tflite_bytes": (folder / TFLITE_FILE).stat().st_size,
        "training_seconds": training.get("seconds"),
        "quantisation_seconds": training.get("quantisation_seconds"),
        "measured_on": timing["measured_on"],
    }


def mark_front(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        row["pareto"] = not any(
            other is not row
            and other["model"] == row["model"]
            and other["accuracy"] >= row["accuracy"]
            and other["us_per_image_b1"] <= row["us_per_image_b1"]
            and (
                other["accuracy"] > row["accuracy"]
                or other["us_per_image_b1"] < row["us_per_image_b1"]
            )
            for other in rows
        )


def markdown(rows: list[dict[str, Any]], models_dir: Path) -> str:
    cpu = rows[0]["measured_on"] if rows else latency.cpu_model()
    lines = [
        "# Accuracy and latency per version",
        "",
        f"`python -m benchmarks.pareto --models-dir {models_dir}` on {cpu}: the service's LiteRT "
        "runtime, one thread, median call time; accuracy on the full test set (metadata.json). "
        "Training time is the source version's fit, plus the conversion for quantised ones. "
        "Pareto: no other version of the model is both at least as accurate and faster at batch 1.",
        "",
        "| model | version | recipe | test accuracy | µs/image b1 | µs/image b16 | size KiB "
        "| training s | Pareto |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        seconds = r["training_seconds"]
        if seconds is not None and r["quantisation_seconds"] is not None:
            shown = f"{seconds:.0f} + {r['quantisation_seconds']:.0f}"
        else:
            shown = "-" if seconds is None else f"{seconds:.0f}"
        lines.append(
            f"| {r['model']} | {r['version']} | {r['recipe']} | {r['accuracy']:.4f} "
            f"| {r['us_per_image_b1']:.1f} | {r['us_per_image_b16']:.1f} "
            f"| {r['tflite_bytes'] / 1024:.0f} | {shown} | {'yes' if r['pareto'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pareto", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per version")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = []
    for model_dir in sorted(p for p in args.models_dir.iterdir() if p.is_dir()):
        versions = [p for p in model_dir.iterdir() if p.name.isdigit()]
        for folder in sorted(versions, key=lambda p: int(p.name)):
            if (folder / "metadata.json").is_file():
                row = measure_version(folder, args.seconds)
                if row is not None:
                    rows.append(row)
                    print(row, flush=True)
    mark_front(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pareto.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "pareto.md").write_text(markdown(rows, args.models_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
