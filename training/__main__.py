"""``python -m training <mnist|fashion_mnist|pima|all> [...]`` (console script ``train``).

Environment defaults: TRAIN_RECIPES (comma list), TRAIN_DATA_DIR, TRAIN_CACHE_DIR,
TRAIN_MODELS_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from training.specs import DATASETS


def _env_int(name: str) -> int | None:
    """An optional positive integer from the environment; empty or unset means None."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train models on the real data sets and export them as new versions.",
    )
    parser.add_argument("model", choices=[*DATASETS, "all"], help="which model to train")
    parser.add_argument(
        "--recipe",
        default=env.get("TRAIN_RECIPES", "tutorial"),
        help="recipe name, comma list, or 'all' (env TRAIN_RECIPES; default: tutorial)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=_env_int("TRAIN_EPOCHS"),
        help="override the recipe's epochs (env TRAIN_EPOCHS)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=env.get("TRAIN_DATA_DIR") or None,
        help="directory holding the data files (env TRAIN_DATA_DIR)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=env.get("TRAIN_CACHE_DIR") or None,
        help="data cache directory (env TRAIN_CACHE_DIR; default: XDG cache)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path(env.get("TRAIN_MODELS_DIR") or "models"),
        help="model repository (env TRAIN_MODELS_DIR; default: models)",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="train only (model, recipe) pairs without a finished version of that recipe",
    )
    parser.add_argument(
        "--subset",
        type=int,
        default=_env_int("TRAIN_SUBSET"),
        help="use the first N examples, for smoke runs (env TRAIN_SUBSET)",
    )
    parser.add_argument("--no-tflite", action="store_true", help="skip the TFLite export")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    return parser


def has_finished_version(models_dir: Path, dataset: str, recipe: str) -> bool:
    """True if a finished version of ``dataset`` was trained with ``recipe``."""
    model_dir = models_dir / dataset
    if not model_dir.is_dir():
        return False
    for meta_path in model_dir.glob("*/metadata.json"):
        if not meta_path.parent.name.isdigit():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("recipe", {}).get("name") == recipe:
            return True
    return False


def plan(datasets: Sequence[str], recipe_arg: str) -> list[tuple[str, str]]:
    """(dataset, recipe) pairs to train; 'all' expands to every registered recipe.

    With several datasets a recipe is trained for those that have it (``all --recipe fast``
    trains the image models' fast variants); a recipe none of them has is an error, as is a
    missing recipe for a single named dataset.
    """
    from training.recipes import recipe_names

    wanted = [r.strip() for r in recipe_arg.split(",") if r.strip()]
    pairs: list[tuple[str, str]] = []
    for dataset in datasets:
        available = recipe_names(dataset)
        for name in available if "all" in wanted else wanted:
            if name in available:
                pairs.append((dataset, name))
            elif len(datasets) == 1:
                known = ", ".join(available)
                raise SystemExit(f"error: no recipe {name!r} for {dataset} (known: {known})")
    unknown = sorted(set(wanted) - {"all"} - {recipe for _, recipe in pairs})
    if unknown:
        raise SystemExit(f"error: no data set has a recipe {unknown[0]!r}")
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    from training.data.errors import DataIntegrityError, DataUnavailable
    from training.trainer import train_and_export

    datasets = list(DATASETS) if args.model == "all" else [args.model]
    pairs = plan(datasets, args.recipe)
    outcomes = []
    for dataset, recipe in pairs:
        if args.if_missing and has_finished_version(args.models_dir, dataset, recipe):
            print(f"== {dataset} / {recipe}: a finished version exists, skipped")
            continue
        try:
            outcome = train_and_export(
                dataset,
                recipe,
                models_dir=args.models_dir,
                data_dir=args.data_dir,
                cache_dir=args.cache_dir,
                epochs=args.epochs,
                subset=args.subset,
                verbose=0 if args.quiet else 2,
                tflite=not args.no_tflite,
            )
        except (DataUnavailable, DataIntegrityError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        outcomes.append(outcome)

    total = time.perf_counter() - started
    if outcomes:
        print("\nsummary:")
    for o in outcomes:
        auc = o.metrics.get("roc_auc")
        extra = f", ROC-AUC {auc:.4f}" if auc is not None else ""
        print(
            f"  {o.dataset:<14} {o.recipe:<10} accuracy {o.metrics['accuracy']:.4f}{extra}"
            f"  {o.seconds:6.1f} s  {o.version_dir}"
        )
    print(f"total wall time: {total:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
