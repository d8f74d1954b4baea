"""Calibration, prediction sets and abstention of the trained versions, on the real test sets.

``python -m benchmarks.trust --models-dir DIR`` loads every version of DIR that ships conformal
scores (``metadata.conformal``) with the service's own runtime and task class (the code that
answers requests: LiteRT when the version has a TFLite file, the task's prediction sets and
abstention rule) and writes ``benchmarks/results/trust.json`` and ``trust.md``:

- **Calibration**: ECE (15 equal-width bins of top-class confidence) before calibration (the
  served probabilities with the version's calibrator inverted) and after it (what the service
  returns), each with a 95% bootstrap interval and the noise floor: the ECE a perfectly
  calibrated model with the same probabilities shows at the test set's size, by simulation.
  Pima also with 10 equal-mass bins.
- **Pima out of fold** (``benchmarks.pima_oof``): the ECE of the ``best`` recipe's predictions
  when every one of the 768 rows is predicted by a model that never saw it (5-fold CV repeated
  three times, the whole recipe per fold), for each calibrator; the same on the 614 training
  rows alone, which is what a calibrator may be chosen by.
- **Prediction sets**: coverage and mean set size at each version's default alpha (from its
  metadata) and at the alphas new versions choose from; the bound for ``alpha`` is
  ``1 - alpha`` minus two binomial standard errors of the test set (0.894 at alpha 0.1 for
  10,000 examples). Also the default the rule of ``conformal.choose_alpha`` picks on the
  version's calibration split, for versions that predate it, and a check that the scores the
  version ships are the ones the served model gives its calibration split.
- **Abstention** (image models, with ``abstain``): the share of answers that abstain, and why,
  for the real test images and for inputs the model was not trained for (the other image data
  set's test images, uniform noise, the test images inverted), at the version's default alpha,
  the rule's alpha and 0.1.
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
NOISE_COUNT = 10_000
NOISE_SEED = 0
OTHER = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}
BATCH = 1024


def _splits(name: str) -> dict[str, np.ndarray]:
    """The test split and the calibration split the trainer held out (same seed, same rows)."""
    from training.specs import get_spec

    spec = get_spec(name)
    split = spec.load().split
    _, x_cal, y_cal = spec.hold_out_calibration(split)
    return {
        "x_test": split.x_test,
        "y_test": split.y_test,
        "x_cal": x_cal,
        "y_cal": y_cal,
        "x_train": split.x_train,
        "y_train": split.y_train,
    }


def _versions(models_dir: Path) -> list[tuple[str, int, Path, dict[str, Any]]]:
    found = []
    for meta_path in sorted(models_dir.glob("*/*/metadata.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("conformal") is not None:
            found.append((meta["name"], int(meta["version"]), meta_path.parent, meta))
    return sorted(found, key=lambda v: (v[0], v[1]))


def _predict(runtime: Any, x: np.ndarray) -> np.ndarray:
    return np.concatenate([runtime.predict(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])


def _calibration(y: np.ndarray, probs: np.ndarray, meta: dict[str, Any]) -> dict[str, Any]:
    from training.calibration import Calibrator, brier_score
    from training.calibration_stats import ece_report

    cal = meta["calibration"]
    before = Calibrator(cal["method"], cal["params"]).invert(probs)
    schemes = [(15, "width")] + ([(10, "mass")] if probs.shape[-1] == 1 else [])
    out: dict[str, Any] = {"method": cal["method"], "params": cal["params"]}
    for label, p in (("before", before), ("after", probs)):
        out[label] = {
            "ece": [ece_report(y, p, bins, scheme).as_dict() for bins, scheme in schemes],
            "brier": round(brier_score(y, p), 6),
        }
    return out


def _sets(task: Any, probs: np.ndarray, y: np.ndarray, alpha: float, n_cal: int) -> dict[str, Any]:
    mask = task.set_masks(probs, alpha)
    covered = mask[np.arange(len(y)), y]
    sizes = mask.sum(axis=1)
    slack = 2 * math.sqrt(alpha * (1 - alpha) / len(y))
    return {
        "alpha": alpha,
        "coverage": round(float(covered.mean()), 4),
        "bound": round(1 - alpha - slack, 4),
        "met": bool(covered.mean() >= 1 - alpha - slack),
        # the bound once the calibration draw's own spread is counted as well
        "bound_with_draw": round(
            1 - alpha - 2 * math.sqrt(alpha * (1 - alpha) * (1 / len(y) + 1 / n_cal)), 4
        ),
        "mean_set_size": round(float(sizes.mean()), 4),
        "single_label": round(float((sizes == 1).mean()), 4),
        "empty": round(float((sizes == 0).mean()), 4),
    }


def _abstention(task: Any, x: np.ndarray, probs: np.ndarray, alpha: float) -> dict[str, Any]:
    reasons = task.abstain_reasons(x, probs, task.set_masks(probs, alpha))
    counts: dict[str, int] = {}
    for r in reasons:
        if r is not None:
            counts[r] = counts.get(r, 0) + 1
    n = len(reasons)
    return {
        "examples": n,
        "abstained": round(sum(counts.values()) / n, 4),
        "reasons": {k: round(v / n, 4) for k, v in sorted(counts.items())},
    }


def _version(
    name: str, version: int, folder: Path, meta: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    from service.runtimes import create_runtime
    from service.serving import conformal
    from service.serving.tasks import Task
    from training.metrics import class_probabilities, predicted_classes

    runtime = create_runtime(folder, meta)
    runtime.load()
    task = Task.from_metadata(meta, folder)
    own = data[name]
    x, y = own["x_test"], own["y_test"]
    probs, cal_out = _predict(runtime, x), _predict(runtime, own["x_cal"])
    cal_probs = class_probabilities(cal_out)
    served = task.conformal
    assert served is not None  # _versions keeps versions with conformal scores only
    shipped = conformal.scores(cal_probs, own["y_cal"])
    rule_alpha, _ = conformal.choose_alpha(served.scores, cal_probs, served.delta)
    default = served.default_alpha
    alphas = sorted({default, rule_alpha, *conformal.ALPHA_CANDIDATES}, reverse=True)

    def accuracy(labels: np.ndarray, out: np.ndarray) -> float:
        return float(np.mean(predicted_classes(out, meta.get("threshold")) == labels))

    row: dict[str, Any] = {
        "model": name,
        "version": version,
        "recipe": meta["recipe"]["name"],
        "runtime": type(runtime).__name__,
        "accuracy": accuracy(y, probs),
        "calibration": _calibration(y, probs, meta),
        "conformal": {
            "default_alpha": default,
            "rule_alpha": rule_alpha,
            "delta": served.delta,
            "n": served.n,
            # the scores the version ships against those its served model gives the split
            "max_score_gap": float(np.abs(np.sort(shipped) - served.scores).max()),
            "calibration_accuracy": accuracy(own["y_cal"], cal_out),
            "calibration_coverage": _sets(task, cal_out, own["y_cal"], default, served.n)[
                "coverage"
            ],
        },
        "sets": [_sets(task, probs, y, a, served.n) for a in alphas],
        "abstention": {},
    }
    if name in OTHER:
        inputs = {
            f"{name} test images": x,
            f"{OTHER[name]} test images": data[OTHER[name]]["x_test"],
            "uniform noise": np.random.default_rng(NOISE_SEED)
            .random((NOISE_COUNT, *x.shape[1:]))
            .astype(np.float32),
            f"inverted {name} test images": (1.0 - x).astype(np.float32),
        }
        for label, images in inputs.items():
            out = probs if images is x else _predict(runtime, images)
            row["abstention"][label] = {
                str(a): _abstention(task, images, out, a)
                for a in sorted({default, rule_alpha, 0.1}, reverse=True)
            }
    runtime.unload()
    return row


def evaluate(models_dir: Path, oof: bool = True) -> dict[str, Any]:
    data: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for name, version, folder, meta in _versions(models_dir):
        for needed in (name, OTHER.get(name)):
            if needed is not None and needed not in data:
                data[needed] = _splits(needed)
        rows.append(_version(name, version, folder, meta, data))
        print(f"{name} {version}: done", flush=True)
    result: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "models_dir": str(models_dir),
        "versions": rows,
    }
    if oof:
        result["pima_oof"] = _pima_oof(data.get("pima") or _splits("pima"))
    return result


def _pima_oof(pima: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import pima_oof

    x_all = np.concatenate([pima["x_train"], pima["x_test"]])
    y_all = np.concatenate([pima["y_train"], pima["y_test"]])
    out: dict[str, Any] = {}
    sets = {"training rows": (pima["x_train"], pima["y_train"]), "all rows": (x_all, y_all)}
    for label, (x, y) in sets.items():
        run = pima_oof.out_of_fold(x, y, log=print)
        out[label] = {
            "examples": len(y),
            "seconds": run["seconds"],
            "width_15": pima_oof.summarise(y, run["probs"], 15, "width"),
            "mass_10": pima_oof.summarise(y, run["probs"], 10, "mass"),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.trust_report import markdown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-oof", action="store_true", help="skip the Pima cross-validation")
    args = parser.parse_args(argv)
    result = evaluate(args.models_dir, oof=not args.no_oof)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trust.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "trust.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
