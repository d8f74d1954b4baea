"""Shared test set-up: quiet TensorFlow (before any TF import) and the ``training`` marker."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "training: trains small models on real data subsets (select with -m training)"
    )
    config.addinivalue_line(
        "markers", "data: loads the real data sets through the real loaders (select with -m data)"
    )
