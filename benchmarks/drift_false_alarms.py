"""``python -m benchmarks.drift_false_alarms``: how often the drift alarm rises on Pima windows
with no shift, offline (the server's own ``DriftWindow``, no HTTP).

The reference is built from the Pima training split (the tutorial's ``random_state=42`` split);
windows are bootstrapped from two pools: the 154-row test split, as the integration test replays
it, and the training rows themselves. The first carries the test split's own sampling difference
from the training rows, which a two-sample test of window against reference does not count; the
second shows the test's rate when that difference is absent. Results:
``benchmarks/results/drift_false_alarms.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.report import markdown_table
from service.serving.drift import DriftWindow, load_reference, record_reference

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEED = 0


def pima_split() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.model_selection import train_test_split

    from training.data.loaders import load_pima
    from training.specs import PIMA_FEATURE_NAMES

    pima = load_pima()
    table = np.asarray(pima.features, dtype=np.float64)
    train, test = train_test_split(table, test_size=0.2, stratify=pima.outcome, random_state=42)
    return train, test, list(PIMA_FEATURE_NAMES)


def alarm_rate(
    pool: np.ndarray, names: list[str], reference_dir: Path, window: int, alpha: float, trials: int
) -> tuple[float, dict[str, int]]:
    """The share of ``trials`` bootstrapped windows that raise the alarm, and by feature."""
    meta = {"drift": {"file": "reference.json"}, "files": {"reference.json": ""}}
    reference = load_reference(meta, reference_dir)
    assert reference is not None
    rng = np.random.default_rng(SEED)
    alarms, by_feature = 0, {name: 0 for name in names}
    for _ in range(trials):
        drift = DriftWindow(reference, window, alpha, window)
        rows = pool[rng.integers(0, len(pool), window)]
        drift.add({name: rows[:, i] for i, name in enumerate(names)})
        report = drift.report()
        alarms += bool(report["alarm"])
        for name, entry in report["features"].items():
            by_feature[name] += bool(entry["alarm"])
    return alarms / trials, by_feature


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drift_false_alarms")
    parser.add_argument("--windows", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--models-dir", type=Path, help="unused: every benchmark takes it")
    args = parser.parse_args(argv)
    train, test, names = pima_split()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "reference.json").write_text(json.dumps(record_reference(train, names)))
        for window in args.windows:
            for pool_name, pool in (("test split", test), ("training rows", train)):
                rate, by_feature = alarm_rate(
                    pool, names, Path(tmp), window, args.alpha, args.trials
                )
                results.append(
                    {
                        "window": window,
                        "pool": pool_name,
                        "pool_rows": len(pool),
                        "false_alarm_rate": rate,
                        "by_feature": by_feature,
                    }
                )
    report = {"alpha": args.alpha, "trials": args.trials, "seed": SEED, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drift_false_alarms.json").write_bytes(
        orjson.dumps(report, option=orjson.OPT_INDENT_2)
    )
    rows = [
        [str(r["window"]), f"{r['pool']} ({r['pool_rows']} rows)", f"{r['false_alarm_rate']:.4f}"]
        for r in results
    ]
    text = (
        f"### Drift false alarms, Pima, alpha {args.alpha}, {args.trials} bootstrapped windows\n\n"
        + markdown_table(["window", "windows drawn from", "false-alarm rate"], rows)
        + "\n"
    )
    (args.out / "drift_false_alarms.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
