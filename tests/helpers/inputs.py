"""Inputs for the decoder tests: Pima feature specs, an image encoder, real test images."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

PIMA_META_FEATURES: list[dict[str, Any]] = [
    {"name": "pregnant", "unit": "count", "description": "times pregnant", "min": 0, "max": 30},
    {"name": "glucose", "unit": "mg/dL", "description": "plasma glucose", "min": 0, "max": 300,
     "missing_if_zero": True},
    {"name": "pressure", "unit": "mm Hg", "description": "diastolic pressure", "min": 0,
     "max": 200, "missing_if_zero": True},
    {"name": "triceps", "unit": "mm", "description": "skin fold", "min": 0, "max": 100,
     "missing_if_zero": True},
    {"name": "insulin", "unit": "µU/mL", "description": "2 h serum insulin", "min": 0,
     "max": 1000, "missing_if_zero": True},
    {"name": "mass", "unit": "kg/m²", "description": "body mass index", "min": 0, "max": 80,
     "missing_if_zero": True},
    {"name": "pedigree", "unit": "", "description": "pedigree function", "min": 0, "max": 3},
    {"name": "age", "unit": "years", "description": "age", "min": 0, "max": 120},
]  # fmt: skip
IMAGES_FILE = "t10k-images-idx3-ubyte"


def encode(img: Image.Image | np.ndarray, fmt: str = "PNG", **options: Any) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def data_dirs(dataset: str, fallback: Path) -> list[Path]:
    dirs: list[Path] = []
    if env := os.environ.get("TRAIN_DATA_DIR"):
        dirs += [Path(env) / dataset, Path(env)]
    try:
        from training.data.local import cache_root

        dirs += [cache_root() / dataset]
    except ImportError:
        pass
    dirs.append(fallback)  # where this machine's mirror packages were extracted
    return dirs


def real_test_images(dataset: str, fallback: Path, count: int = 300) -> np.ndarray:
    """The first ``count`` test images of a data set, uint8 (count, 28, 28), or a clean skip."""
    for directory in data_dirs(dataset, fallback):
        for path in (directory / IMAGES_FILE, directory / f"{IMAGES_FILE}.gz"):
            if path.is_file():
                raw = path.read_bytes()
                raw = gzip.decompress(raw) if path.suffix == ".gz" else raw
                if raw[:4] == b"\x00\x00\x08\x03" and len(raw) >= 16 + count * 784:
                    return np.frombuffer(raw, np.uint8, count * 784, 16).reshape(count, 28, 28)
    pytest.skip(f"no {dataset} test images on disk (set TRAIN_DATA_DIR or run the trainer once)")
