"""The standard public downloads that users with internet have (short timeout, fail fast)."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import numpy as np

from training.data.errors import DataIntegrityError, SourceFailed
from training.data.idx import IDX_FILES, encode_idx, gunzip

TIMEOUT_S = 10.0
# The same files keras.datasets.{mnist,fashion_mnist}.load_data() fetch.
KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_MNIST_URL = KERAS_BASE + "mnist.npz"
# A well-known public copy of the Pima CSV (no header, outcome 0/1).
PIMA_CSV_URL = (
    "https://raw.githubusercontent.com/jbrownlee/Datasets/master/pima-indians-diabetes.data.csv"
)
_NPZ_KEYS = {
    "train-images-idx3-ubyte": "x_train",
    "train-labels-idx1-ubyte": "y_train",
    "t10k-images-idx3-ubyte": "x_test",
    "t10k-labels-idx1-ubyte": "y_test",
}


def http_get(url: str, timeout: float = TIMEOUT_S) -> bytes:
    """GET ``url``; any network failure becomes :class:`SourceFailed` saying why, not where (a
    download's label names its address; tests patch this)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read()
            return data
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceFailed(f"{type(exc).__name__}: {reason}") from exc


def image_urls(dataset: str) -> list[str]:
    if dataset == "mnist":
        return [KERAS_MNIST_URL]
    return [f"{KERAS_BASE}{name}.gz" for name in IDX_FILES]


def npz_to_idx(data: bytes, source: str) -> dict[str, bytes]:
    """Keras's mnist.npz holds the IDX arrays; re-encode them as IDX bytes for the SHA-256 check."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: np.asarray(npz[key]) for name, key in _NPZ_KEYS.items()}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataIntegrityError("mnist.npz", source, f"unreadable npz: {exc!r}") from exc
    files: dict[str, bytes] = {}
    for name, array in arrays.items():
        if array.dtype != np.uint8:
            raise DataIntegrityError(name, source, f"dtype {array.dtype}, expected uint8")
        files[name] = encode_idx(array)
    return files


def download_images(dataset: str, source: str) -> dict[str, bytes]:
    if dataset == "mnist":
        return npz_to_idx(http_get(KERAS_MNIST_URL), source)
    files: dict[str, bytes] = {}
    for name, url in zip(IDX_FILES, image_urls(dataset), strict=True):
        files[name] = gunzip(http_get(url), f"{name}.gz", source)
    return files


def download_pima() -> bytes:
    return http_get(PIMA_CSV_URL)
