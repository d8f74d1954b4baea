"""Local sources: the user's data directory and the cache (paths, reading, atomic writes)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from training.data.errors import SourceFailed
from training.data.idx import IDX_FILES, gunzip
from training.data.pima import PIMA_CSV_ALIASES

DATA_DIR_ENV = "TRAIN_DATA_DIR"
CACHE_DIR_ENV = "TRAIN_CACHE_DIR"
CACHE_APP_NAME = "digitserve"


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """Argument, else $TRAIN_CACHE_DIR, else $XDG_CACHE_HOME/digitserve, else ~/.cache/..."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if env := os.environ.get(CACHE_DIR_ENV):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / CACHE_APP_NAME


def user_root(data_dir: Path | str | None = None) -> Path | None:
    """Argument, else $TRAIN_DATA_DIR, else None (no user directory)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None


def candidate_dirs(root: Path, dataset: str) -> list[Path]:
    """A user directory may hold the files in a per-dataset subfolder or directly."""
    return [root / dataset, root]


def read_idx_dir(directory: Path, source: str) -> dict[str, bytes]:
    """Read the four standard IDX files, raw or ``.gz``, as uncompressed bytes."""
    found: dict[str, Path] = {}
    for name in IDX_FILES:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    missing = [name for name in IDX_FILES if name not in found]
    if missing:
        if not found:
            raise SourceFailed(f"no IDX files in {directory}")
        raise SourceFailed(f"missing {', '.join(missing)} (raw or .gz) in {directory}")
    files: dict[str, bytes] = {}
    for name, path in found.items():
        data = _read(path)
        files[name] = gunzip(data, path.name, source) if path.suffix == ".gz" else data
    return files


def find_pima_csv(directory: Path) -> Path | None:
    for name in PIMA_CSV_ALIASES:
        if (directory / name).is_file():
            return directory / name
    return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceFailed(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_file(path: Path) -> bytes:
    return _read(path)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(directory: Path, files: dict[str, bytes]) -> None:
    """Write every file atomically; a stale ``.gz`` twin of a raw file is removed."""
    for name, data in files.items():
        atomic_write(directory / name, data)
        (directory / f"{name}.gz").unlink(missing_ok=True)
