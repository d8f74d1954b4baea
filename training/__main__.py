"""``python -m training <mnist|fashion_mnist|pima|all> [...]`` (console script ``train``).

Environment defaults: TRAIN_RECIPES (comma list of recipes, recipe+mode or defaults),
TRAIN_DATA_DIR, TRAIN_CACHE_DIR, TRAIN_MODELS_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from training import interrupts
from training.cli import existing_dir, positive_int, writable_models_dir
from training.specs import DATASETS

if TYPE_CHECKING:
    from training.trainer import TrainOutcome


def _env_int(name: str) -> int | None:
    """An optional positive integer from the environment; empty or unset means None."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return positive_int(raw)
    except argparse.ArgumentTypeError as exc:
        print(f"error: {name} {exc}", file=sys.stderr)
        raise SystemExit(2) from None


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
        help="recipe name, recipe+mode (its quantised copy), 'defaults' (what each model serves "
        "by default), 'all', or a comma list of these (env TRAIN_RECIPES; default: tutorial)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="override the recipe's epochs (env TRAIN_EPOCHS)",
    )
    parser.add_argument(
        "--data-dir",
        type=existing_dir,
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
        help="run only the steps without a finished version of that recipe (or quantised copy)",
    )
    parser.add_argument(
        "--subset",
        type=positive_int,
        default=None,
        help="use the first N examples, for smoke runs (env TRAIN_SUBSET)",
    )
    parser.add_argument("--no-tflite", action="store_true", help="skip the TFLite export")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    return parser


def has_finished_version(
    models_dir: Path, dataset: str, recipe: str, *, smoke: bool = False
) -> bool:
    """True if a finished version of ``dataset`` was trained with ``recipe``: on the full data,
    unless ``smoke`` (this run uses a subset too). A smoke run's version never stands in for the
    real one, or a later ``--if-missing`` would never train it."""
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
        if not isinstance(meta, dict) or meta.get("recipe", {}).get("name") != recipe:
            continue
        if smoke or not (meta.get("training") or {}).get("subset"):
            return True
    return False


def _steps(dataset: str, token: str, available: Sequence[str]) -> list[str] | None:
    """The steps one ``--recipe`` token names for ``dataset``; None when it has no such recipe.

    A step is a recipe name (train it) or ``recipe+mode`` (quantise the newest version trained
    with it, ``training.quantize``).
    """
    from training.quantize import MODES, image_models
    from training.recipes import SERVED

    if token == "all":
        return list(available)
    if token == "defaults":
        served = SERVED.get(dataset)
        if served is None:
            return None
        base = served.partition("+")[0]
        return [base, served] if base != served else [served]
    base, plus, mode = token.partition("+")
    if not plus:
        return [token] if token in available else None
    if mode not in MODES:
        raise SystemExit(
            f"error: {token!r}: no quantisation mode {mode!r} (known: {', '.join(MODES)})"
        )
    if dataset not in image_models():
        raise NotQuantised(dataset)
    if base not in available:
        return None
    return [token]


class NotQuantised(Exception):
    """A ``recipe+mode`` token for a data set whose versions are not quantised."""


def plan(datasets: Sequence[str], recipe_arg: str) -> list[tuple[str, str]]:
    """(dataset, step) pairs to run, in order, each once; see :func:`_steps` for the steps.

    Tokens: a recipe name; ``all`` (every registered recipe); ``recipe+mode`` (that recipe's
    quantised copy); ``defaults`` (what each model serves by default, ``training.recipes.SERVED``,
    with the version it is quantised from). With several datasets a token applies to those that
    have it (``all --recipe fast`` trains the image models' fast variants); a token none of them
    has is an error, as is a missing recipe for a single named dataset. A quantised copy runs
    after the training of its recipe when both are planned, whatever their order.
    """
    from training.quantize import image_models
    from training.recipes import recipe_names

    wanted = [r.strip() for r in recipe_arg.split(",") if r.strip()]
    if not wanted:
        raise SystemExit("error: no recipe named (--recipe or TRAIN_RECIPES is empty)")
    pairs: list[tuple[str, str]] = []
    matched: set[str] = set()
    for dataset in datasets:
        available = recipe_names(dataset)
        for token in wanted:
            try:
                steps = _steps(dataset, token, available)
            except NotQuantised:
                if len(datasets) == 1:
                    models = ", ".join(image_models())
                    raise SystemExit(
                        f"error: {token!r}: {dataset}'s versions are not quantised "
                        f"(only the image models' are: {models})"
                    ) from None
                continue
            if steps is None:
                if len(datasets) == 1:
                    known = ", ".join(available)
                    raise SystemExit(f"error: no recipe {token!r} for {dataset} (known: {known})")
                continue
            matched.add(token)
            for step in steps:
                if (dataset, step) in pairs:
                    continue
                # a copy of this recipe planned earlier is made from the version trained here
                copies = [
                    i for i, (d, s) in enumerate(pairs) if d == dataset and s.startswith(f"{step}+")
                ]
                pairs.insert(copies[0] if copies else len(pairs), (dataset, step))
    unknown = [token for token in wanted if token not in matched]
    if unknown:
        raise SystemExit(f"error: no data set has a recipe {unknown[0]!r}")
    return pairs


def _quantise(args: argparse.Namespace, dataset: str, step: str) -> TrainOutcome:
    """Run the ``recipe+mode`` step: quantise the newest version trained with the recipe."""
    from training.quantize import newest_version, quantize_version
    from training.trainer import TrainOutcome

    recipe, _, mode = step.partition("+")
    started = time.perf_counter()
    source = newest_version(args.models_dir, dataset, recipe)
    target = quantize_version(
        args.models_dir,
        dataset,
        source,
        mode,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        subset=args.subset,
    )
    meta = json.loads((target / "metadata.json").read_text(encoding="utf-8"))
    return TrainOutcome(dataset, step, target, meta["metrics"], time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    with interrupts.handled():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # read after parsing, so that a bad value in the environment does not break --help
    for option, name in (("epochs", "TRAIN_EPOCHS"), ("subset", "TRAIN_SUBSET")):
        if getattr(args, option) is None:
            setattr(args, option, _env_int(name))
    started = time.perf_counter()
    from training.data.errors import DataIntegrityError, DataUnavailable
    from training.quantize import AccuracyLost, SourceMismatch
    from training.trainer import train_and_export

    datasets = list(DATASETS) if args.model == "all" else [args.model]
    try:
        pairs = plan(datasets, args.recipe)
    except SystemExit as exc:  # a recipe that does not exist: a usage error, as argparse's
        if not isinstance(exc.code, str):
            raise
        print(exc.code, file=sys.stderr)
        return 2
    problem = writable_models_dir(args.models_dir)
    if problem is not None:  # before any training, not after it
        print(f"error: {problem}", file=sys.stderr)
        return 2
    outcomes = []
    refused: list[str] = []
    failed = 0
    for dataset, step in pairs:
        smoke = args.subset is not None
        if args.if_missing and has_finished_version(args.models_dir, dataset, step, smoke=smoke):
            print(f"== {dataset} / {step}: a finished version exists, skipped")
            continue
        try:
            if "+" in step:
                outcome = _quantise(args, dataset, step)
            else:
                outcome = train_and_export(
                    dataset,
                    step,
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
        except AccuracyLost as exc:
            # the gate did its job: no copy, its source stays served; not a failed run (a
            # container's one-shot training would otherwise keep the service from starting)
            print(f"refused: {dataset} / {step}: {exc}", file=sys.stderr)
            refused.append(f"{dataset} / {step}")
            continue
        except (FileNotFoundError, SourceMismatch) as exc:  # e.g. no version to quantise
            print(f"error: {dataset} / {step}: {exc}", file=sys.stderr)
            failed += 1
            continue
        except KeyboardInterrupt:
            print(f"interrupted: no version of {dataset} / {step} was published", file=sys.stderr)
            return interrupts.exit_status()
        outcomes.append(outcome)

    total = time.perf_counter() - started
    if outcomes or refused:
        print("\nsummary:")
    for o in outcomes:
        auc = o.metrics.get("roc_auc")
        extra = f", ROC-AUC {auc:.4f}" if auc is not None else ""
        print(
            f"  {o.dataset:<14} {o.recipe:<14} accuracy {o.metrics['accuracy']:.4f}{extra}"
            f"  {o.seconds:6.1f} s  {o.version_dir}"
        )
    for step in refused:
        print(f"  {step}: refused (it lost too much accuracy), not exported")
    print(f"total wall time: {total:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
