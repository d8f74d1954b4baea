"""Argument checks the training commands share: what a user mistyped is one clear line."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (epochs, subsets, versions)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def existing_dir(text: str) -> Path:
    """An argparse type: a directory that exists (a data directory named by mistake would
    otherwise be passed over for the next source without a word)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {text}")
    return path


def writable_models_dir(path: Path) -> str | None:
    """Why no version could be written under ``path`` (created if missing), or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"the model repository {path} cannot be written: {exc.strerror or exc}"
    return None
