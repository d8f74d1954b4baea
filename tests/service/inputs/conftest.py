"""Fixtures for the decoder tests: image encoders, Pima feature specs and real MNIST test images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from service.inputs.records import FeatureSpec, features_from_metadata
from tests.helpers.inputs import PIMA_META_FEATURES, encode, real_test_images
from tests.helpers.models import PIMA_ROW


@pytest.fixture(scope="session")
def pima_features() -> list[FeatureSpec]:
    return features_from_metadata({"name": "features", "features": PIMA_META_FEATURES})


@pytest.fixture(scope="session")
def pima_record() -> dict[str, float]:
    return {f["name"]: v for f, v in zip(PIMA_META_FEATURES, PIMA_ROW, strict=True)}


@pytest.fixture(scope="session")
def to_bytes() -> Callable[..., bytes]:
    """``to_bytes(image_or_uint8_array, fmt="PNG", **save_options) -> bytes``."""
    return encode


@pytest.fixture(scope="session")
def mnist_test_images() -> np.ndarray:
    """The first 300 real MNIST test images."""
    return real_test_images("mnist", Path("/tmp/dl/x/package/data"))


@pytest.fixture(scope="session")
def fashion_test_images() -> np.ndarray:
    """The first 300 real Fashion-MNIST test images."""
    return real_test_images("fashion_mnist", Path("/tmp/dl/x/usr/share/datasets/fashion-mnist"))
