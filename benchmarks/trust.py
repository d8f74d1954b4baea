"""Calibration, prediction sets and abstention of the trained versions, on the real test sets.

``python -m benchmarks.trust --models-dir DIR`` loads every version of DIR that ships conformal
scores (``metadata.conformal``) with the service's own runtime and task class (the code that
answers requests: LiteRT when the version has a TFLite file, the task's prediction sets and
abstention rule) and writes ``benchmarks/results/trust.json`` and ``trust.md``:

- **Calibration**: ECE (15 bins, top-class confidence) and Brier score on the test set before
  calibration (recorded by the trainer, which held the uncalibrated model) and after it
  (recomputed here from what the served model returns), and the accuracy of both.
- **Prediction sets**: coverage (share of test examples whose set holds the true label) and
  mean set size at several alphas; the bound for ``alpha`` is ``1 - alpha`` minus the binomial
  slack of the test set (two standard errors: 0.894 at alpha 0.1 for 10,000 examples).
- **Abstention** (image models, with ``abstain``): the share of answers that abstain, and why,
  for the real test images and for inputs the model was not trained for: the other image data
  set's test images, uniform noise, and the test images inverted (ink and background swapped).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ALPHAS = (0.1, 0.05, 0.01)
ABSTAIN_ALPHAS = (0.1, 0.01)
NOISE_COUNT = 10_000
NOISE_SEED = 0
OTHER = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}


def _test_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    from training.specs import get_spec

    split = get_spec(name).load().split
    return split.x_test, split.y_test


def _versions(models_dir: Path) -> list[tuple[str, int, Path, dict[str, Any]]]:
    found = []
    for meta_path in sorted(models_dir.glob("*/*/metadata.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("conformal") is not None:
            found.append((meta["name"], int(meta["version"]), meta_path.parent, meta))
    return sorted(found, key=lambda v: (v[0], v[1]))


def _abstention(task: Any, x: np.ndarray, probs: np.ndarray, alpha: float) -> dict[str, Any]:
    mask = task.set_masks(probs, alpha)
    reasons = task.abstain_reasons(x, mask)
    n = len(reasons)
    counts: dict[str, int] = {}
    for r in reasons:
        if r is not None:
            counts[r] = counts.get(r, 0) + 1
    return {
        "examples": n,
        "abstained": round(sum(counts.values()) / n, 4),
        "reasons": {k: round(v / n, 4) for k, v in sorted(counts.items())},
    }


def evaluate(models_dir: Path) -> dict[str, Any]:
    from service.runtimes import create_runtime
    from service.serving.tasks import Task
    from training.calibration import summary
    from training.metrics import classification_metrics

    tests: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows: list[dict[str, Any]] = []
    for name, version, folder, meta in _versions(models_dir):
        if name not in tests:
            tests[name] = _test_split(name)
        x, y = tests[name]
        runtime = create_runtime(folder, meta)
        runtime.load()
        task = Task.from_metadata(meta, folder)
        predict = runtime.predict
        probs = np.concatenate([predict(x[i : i + 1024]) for i in range(0, len(x), 1024)])
        threshold = meta.get("threshold")
        accuracy = classification_metrics(y, probs, list(meta["labels"]), threshold)["accuracy"]
        cal = meta.get("calibration") or {}
        row: dict[str, Any] = {
            "model": name,
            "version": version,
            "recipe": meta["recipe"]["name"],
            "runtime": type(runtime).__name__,
            "calibration": {
                "method": cal.get("method"),
                "params": cal.get("params"),
                "before": cal.get("before"),
                "after_served": {**summary(y, probs), "accuracy": accuracy},
            },
            "sets": [],
            "abstention": {},
        }
        for alpha in ALPHAS:
            mask = task.set_masks(probs, alpha)
            covered = mask[np.arange(len(y)), y]
            sizes = mask.sum(axis=1)
            slack = 2 * math.sqrt(alpha * (1 - alpha) / len(y))
            row["sets"].append(
                {
                    "alpha": alpha,
                    "coverage": round(float(covered.mean()), 4),
                    "bound": round(1 - alpha - slack, 4),
                    "met": bool(covered.mean() >= 1 - alpha - slack),
                    "mean_set_size": round(float(sizes.mean()), 4),
                    "single_label": round(float((sizes == 1).mean()), 4),
                    "empty": round(float((sizes == 0).mean()), 4),
                }
            )
        if name in OTHER:
            inputs = {
                f"{name} test images": x,
                f"{OTHER[name]} test images": _test_split(OTHER[name])[0],
                "uniform noise": np.random.default_rng(NOISE_SEED)
                .random((NOISE_COUNT, *x.shape[1:]))
                .astype(np.float32),
                f"inverted {name} test images": (1.0 - x).astype(np.float32),
            }
            for label, images in inputs.items():
                out = np.concatenate(
                    [predict(images[i : i + 1024]) for i in range(0, len(images), 1024)]
                )
                row["abstention"][label] = {
                    str(alpha): _abstention(task, images, out, alpha) for alpha in ABSTAIN_ALPHAS
                }
        runtime.unload()
        rows.append(row)
        print(f"{name} {version}: done", flush=True)
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "models_dir": str(models_dir),
        "versions": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Calibration, prediction sets and abstention",
        "",
        f"`python -m benchmarks.trust --models-dir {result['models_dir']}`, "
        f"{result['created_at']}. Test sets: MNIST and Fashion-MNIST 10,000 images each, Pima "
        "the tutorial split's 154 rows. ECE: 15 bins of top-class confidence. Brier: summed "
        "over classes (images), (p - y)^2 (Pima).",
        "",
        "## Calibration (test set)",
        "",
        "| model | version | recipe | method | ECE before | ECE after | Brier before | "
        "Brier after | accuracy before | accuracy after |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["versions"]:
        cal = row["calibration"]
        before, after = cal["before"] or {}, cal["after_served"]
        lines.append(
            f"| {row['model']} | {row['version']} | {row['recipe']} | {cal['method']} | "
            f"{before.get('ece', float('nan')):.4f} | {after['ece']:.4f} | "
            f"{before.get('brier', float('nan')):.4f} | {after['brier']:.4f} | "
            f"{before.get('accuracy', float('nan')):.4f} | {after['accuracy']:.4f} |"
        )
    lines += [
        "",
        "## Prediction sets (test set)",
        "",
        "| model | version | alpha | coverage | bound (1 - alpha - 2 SE) | mean set size | "
        "one label | empty |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["versions"]:
        for s in row["sets"]:
            met = "" if s["met"] else " (below)"
            lines.append(
                f"| {row['model']} | {row['version']} | {s['alpha']} | {s['coverage']:.4f}{met} "
                f"| {s['bound']:.4f} | {s['mean_set_size']:.3f} | {s['single_label']:.4f} | "
                f"{s['empty']:.4f} |"
            )
    lines += [
        "",
        "## Abstention (`abstain=true`)",
        "",
        "Share of answers that abstain; in brackets why: out of distribution (OOD flag), several "
        "labels in the set, or none.",
        "",
        "| model | version | inputs | alpha | abstained | OOD | several labels | no label |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["versions"]:
        for label, by_alpha in row["abstention"].items():
            for alpha, a in by_alpha.items():
                r = a["reasons"]
                lines.append(
                    f"| {row['model']} | {row['version']} | {label} | {alpha} | "
                    f"{a['abstained']:.4f} | {r.get('out_of_distribution', 0):.4f} | "
                    f"{r.get('several_labels', 0):.4f} | {r.get('no_label', 0):.4f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = evaluate(args.models_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trust.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "trust.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
