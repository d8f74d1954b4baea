"""Shared test set-up: quiet TensorFlow (before any TF import), the markers, and the fixtures
every tier uses: the anyio backend and the tiny model repository."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.models import cached_tiny_repository


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "training: trains small models on real data subsets (select with -m training)"
    )
    config.addinivalue_line(
        "markers", "data: loads the real data sets through the real loaders (select with -m data)"
    )


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny repository (``tests.helpers.models``), read-only: use ``repo_copy`` to change."""
    return cached_tiny_repository(tmp_path_factory.mktemp("repo") / "models")


@pytest.fixture
def repo_copy(tiny_repo: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the tiny repository that a test may change."""
    target = tmp_path / "models"
    shutil.copytree(tiny_repo, target)
    yield target
