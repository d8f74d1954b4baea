"""The real data sets through the real code path (select with ``-m data``).

The mirrors work on this machine and in CI. To stay fast, a warm default cache (as
``python -m training.datasets all`` leaves it) is used as the *user directory*, so the real files
still go through parsing, SHA-256 checks and the cache write into a temporary cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from training.data import idx, local
from training.datasets import PIMA_FEATURES, load_images, load_pima

pytestmark = pytest.mark.data


def _warm_default_cache(dataset: str) -> Path | None:
    root = local.cache_root()
    return root if (root / dataset).is_dir() else None


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_images(name: str, tmp_path: Path) -> None:
    data = load_images(name, data_dir=_warm_default_cache(name), cache_dir=tmp_path)  # type: ignore[arg-type]
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        assert array.dtype == np.uint8
    assert set(np.unique(data.y_train).tolist()) == set(range(10))
    assert data.sha256 == idx.IDX_SHA256[name]
    # The Keras npz path re-encodes arrays as IDX: that must reproduce the published checksums.
    assert hashlib.sha256(idx.encode_idx(data.x_test)).hexdigest() == data.sha256[idx.IDX_FILES[2]]
    again = load_images(name, cache_dir=tmp_path, allow_download=False, allow_mirrors=False)  # type: ignore[arg-type]
    assert again.source == f"cache {tmp_path / name}"
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_real_pima(tmp_path: Path) -> None:
    data = load_pima(data_dir=_warm_default_cache("pima"), cache_dir=tmp_path)
    assert data.features.shape == (768, len(PIMA_FEATURES)) and data.features.dtype == np.float64
    assert data.outcome.dtype == np.int64
    assert np.bincount(data.outcome).tolist() == [500, 268]
    np.testing.assert_allclose(data.features[0], [6, 148, 72, 35, 0, 33.6, 0.627, 50])
    assert data.outcome[0] == 1
    again = load_pima(cache_dir=tmp_path, allow_download=False, allow_mirrors=False)
    assert again.source == f"cache {tmp_path / 'pima'}"
    assert again.sha256 == data.sha256
    np.testing.assert_array_equal(again.features, data.features)
