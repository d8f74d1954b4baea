"""Shared helpers for the protocol conformance tests: a real server and the golden samples."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers.live_server import MODELS, Server, run_server, trained_repository

Golden = dict[str, tuple[np.ndarray, np.ndarray, float]]


def default_versions(base_url: str) -> dict[str, int]:
    """The version each model's version-less paths serve, as the running server reports it
    (the default policy weighs accuracy and latency, so it is not always the newest)."""
    models = httpx.get(f"{base_url}/readyz", timeout=30).json()["models"]
    return {name: int(models[name]) for name in MODELS}


def golden_samples(models_dir: Path, versions: Mapping[str, int] | None = None) -> Golden:
    """Per model: (inputs, expected outputs, atol) from the served version's metadata.json
    (``versions``, else the newest)."""
    out: Golden = {}
    for name in MODELS:
        found = sorted(
            int(p.parent.name)
            for p in (models_dir / name).glob("*/metadata.json")
            if p.parent.name.isdigit()
        )
        chosen = versions[name] if versions is not None else found[-1]
        meta = json.loads((models_dir / name / str(chosen) / "metadata.json").read_text())
        g = meta["golden"]
        x = np.asarray(g["inputs"], np.float32)
        y = np.asarray(g["outputs"], np.float32).reshape(len(x), -1)
        out[name] = (x, y, float(g.get("atol", 1e-4)))
    return out


@contextmanager
def protocol_server(tmp: Path) -> Iterator[tuple[Server, Path]]:
    models_dir = trained_repository()
    labels = json.dumps({name: {"stable": 1} for name in MODELS})
    env = {"SERVE_VERSION_POLICY": "latest", "SERVE_VERSION_LABELS": labels}
    with run_server(models_dir, tmp / "server.log", env=env) as server:
        yield server, models_dir


integration = pytest.mark.integration
